"""The control-room console, the family page and the HTTP/websocket API behind them."""

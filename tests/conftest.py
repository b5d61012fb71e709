pytest_plugins = ["tests.fix_wait", "tests.fix_db", "tests.fix_broker", "tests.fix_ingest", "tests.fix_alerts", "tests.fix_proxy", "tests.fix_jiashan", "tests.fix_dispatch", "tests.fix_api"]

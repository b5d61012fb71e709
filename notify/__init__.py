"""The notifier (`watchpost notify`): SMS and voice calls to a person's family contacts, as
the escalation steps queue them in the `notifications` table. Pure cores: `outcomes` (what
an attempt's result means, retries), `sms` (UCS-2 segmentation), `messages` (the texts);
adapters: `smpp`, `webhook`, `baresip` (SIP), `prompts` (espeak-ng); `store` (the table) and
`notifier` (the loop). docs/notifications.md.
"""

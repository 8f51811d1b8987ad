"""Notices (通知公告): send to users, roles and org subtrees, live pop-ups, read receipts."""

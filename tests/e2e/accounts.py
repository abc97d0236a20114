"""The two accounts every browser test's server starts with."""

ADMIN_EMAIL = "admin@example.org"
ADMIN_NAME = "Ada Admin"
ADMIN_PASSWORD = "e2e admin password 42"

# Hostile markup and CJK in one display name: it must come out as plain text, never as markup.
MEMBER_EMAIL = "member@example.org"
MEMBER_NAME = "<script>alert(1)</script> 王小明"
MEMBER_PASSWORD = "e2e member password 42"

"""leave room in proj_entries pages for in-place updates

A batch re-derives the entry rows it touched; most edits (a description, billable, a
rename) change no indexed column, so updating the row in place can be a heap-only update
(no entry in the table's eight indexes) when its page has room. Pages filled to 85 % keep
that room. Existing pages get it when the table is next rewritten (a rebuild); new and
updated rows get it at once.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-28
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE proj_entries SET (fillfactor = 85)")


def downgrade() -> None:
    op.execute("ALTER TABLE proj_entries RESET (fillfactor)")

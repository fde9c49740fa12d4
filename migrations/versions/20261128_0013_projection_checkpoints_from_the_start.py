"""a checkpoint row for every projection from the start

The runner created the catalog and entries checkpoints on its first batch, so until a
worker had run once, /metrics and `evotrack projections status` showed no lag for them at
all (the metrics list the projections that have a checkpoint): a deployment whose worker
never started looked idle instead of behind. Their rows now exist from the migrations on,
at the beginning of the change log, which is what the runner would have created.
(Notifications got its row in 0007.)

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-28
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "INSERT INTO projection_checkpoints (name) VALUES ('catalog'), ('entries')"
        " ON CONFLICT (name) DO NOTHING"
    )


def downgrade() -> None:
    """Nothing to undo: the runner creates the same rows on its first batch."""

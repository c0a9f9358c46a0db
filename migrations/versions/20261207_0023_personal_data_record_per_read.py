"""the personal-data access record: one row per read, naming its cases

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07 13:00:00

A person's read of personal data wrote a row per case shown: 50 for a page of the queue, each
with four index entries, one of them, (case_id, at), at a random place. That was half of
PostgreSQL's CPU for a page of the queue (2.4 against 1.0-1.3 ms a page with no record,
measured over HTTP at 1M cases) and a third of it for a case's page. Now a read is one row,
its cases in `case_ids`: an array on PostgreSQL, found by a GIN index (fastupdate off: a
pending list saves a little more per insert, but whoever inserts when it is full merges all of
it, a stall of up to 0.9 s measured), a JSON list on SQLite. Inserting the record of 50 cases
cost PostgreSQL 0.31 ms this way against 0.82 as 50 rows (16 connections, 24,000 records each
way, the 1M bench copy).

The rows one statement wrote (the cases of a page, of an export) share their reader, way and
time to the microsecond: they become one record, with the smallest id among them. Downgrade
turns each record back into a row per case (new ids but the first's).

On a large record the upgrade rewrites it in the migration's transaction (reads of personal
data wait for it); the rows it removes are left to (auto)vacuum.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "personal_data_access"
BY_CASE = "ix_personal_data_access_case_at"
CASES = "ix_personal_data_access_case_ids"
ONE_READ = "actor, actor_name, actor_role, via, at"
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.add_column(TABLE, sa.Column("case_ids", postgresql.ARRAY(sa.BigInteger())))
        op.execute(
            f"UPDATE {TABLE} AS r SET case_ids = g.case_ids FROM ("
            f"SELECT min(id) AS id, array_agg(case_id ORDER BY case_id) AS case_ids "
            f"FROM {TABLE} GROUP BY {ONE_READ}) AS g WHERE r.id = g.id"
        )
        op.execute(f"DELETE FROM {TABLE} WHERE case_ids IS NULL")
        op.alter_column(TABLE, "case_ids", nullable=False)
        op.drop_index(BY_CASE, table_name=TABLE)
        op.drop_column(TABLE, "case_id")
        op.create_index(
            CASES,
            TABLE,
            ["case_ids"],
            postgresql_using="gin",
            postgresql_with={"fastupdate": "off"},
        )
        return
    op.add_column(TABLE, sa.Column("case_ids", sa.JSON()))
    op.execute(
        f"UPDATE {TABLE} SET case_ids = (SELECT json_group_array(case_id) FROM "
        f"(SELECT o.case_id FROM {TABLE} AS o WHERE o.actor = {TABLE}.actor "
        f"AND o.actor_name = {TABLE}.actor_name AND o.actor_role = {TABLE}.actor_role "
        f"AND o.via = {TABLE}.via AND o.at = {TABLE}.at ORDER BY o.case_id)) "
        f"WHERE id IN (SELECT min(id) FROM {TABLE} GROUP BY {ONE_READ})"
    )
    op.execute(f"DELETE FROM {TABLE} WHERE case_ids IS NULL")
    with op.batch_alter_table(TABLE) as batch:
        batch.alter_column("case_ids", existing_type=sa.JSON(), nullable=False)
        batch.drop_index(BY_CASE)
        batch.drop_column("case_id")


def downgrade() -> None:
    postgresql_ = op.get_context().dialect.name == "postgresql"
    if postgresql_:
        op.drop_index(CASES, table_name=TABLE)
    op.add_column(TABLE, sa.Column("case_id", BIG_ID))
    columns = f"case_id, {ONE_READ}"
    if postgresql_:
        first = "(SELECT min(c) FROM unnest(case_ids) AS c)"
        op.execute(
            f"INSERT INTO {TABLE} ({columns}, case_ids) SELECT c, {ONE_READ}, '{{}}' "
            f"FROM {TABLE}, unnest(case_ids) AS c WHERE c <> {first}"
        )
        op.execute(f"UPDATE {TABLE} SET case_id = {first} WHERE case_id IS NULL")
    else:
        first = "(SELECT min(value) FROM json_each(case_ids))"
        op.execute(
            f"INSERT INTO {TABLE} ({columns}, case_ids) SELECT j.value, {ONE_READ}, '[]' "
            f"FROM {TABLE}, json_each({TABLE}.case_ids) AS j WHERE j.value <> {first}"
        )
        op.execute(f"UPDATE {TABLE} SET case_id = {first} WHERE case_id IS NULL")
    with op.batch_alter_table(TABLE) as batch:
        batch.alter_column("case_id", existing_type=BIG_ID, nullable=False)
        batch.drop_column("case_ids")
    op.create_index(BY_CASE, TABLE, ["case_id", "at"])

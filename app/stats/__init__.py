"""Statistics, league tables and exports: figures computed by the database."""

DROP INDEX idx_backup_runs_archive;
DROP INDEX idx_backup_runs_started;
DROP TABLE backup_runs;

DROP INDEX idx_alert_history_created;
DROP TABLE alert_history;
DROP TABLE metrics_minutely;

DROP INDEX idx_notification_channel_user;
DROP TABLE notification_settings;

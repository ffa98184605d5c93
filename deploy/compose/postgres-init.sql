-- Run once by the postgres image on an empty data directory: one database per service, because
-- the services never share tables.
CREATE DATABASE crossgen_matching;
CREATE DATABASE crossgen_sessions;
CREATE DATABASE crossgen_notifications;

-- streamkafka 0.2.0 -> 0.3.0: defects found reading and probing 0.2.0
-- (privileges, search_path, dead-letter isolation, accounting).  CREATE
-- EXTENSION runs 0.1.0's script and the upgrade scripts after it, so new
-- installs and upgrades get the same objects.

\echo Use "ALTER EXTENSION streamkafka UPDATE TO '0.3.0'" to load this file. \quit

-- == functions and search_path ==



-- == table streaming ==



-- == dead letters ==



-- == statistics and accounting ==



-- == monitoring ==



-- == queue ==



-- == privileges ==


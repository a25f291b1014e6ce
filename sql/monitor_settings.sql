-- monitor_settings: the monitor's settings and the client id are checked
-- when set, with the reason; a client id with punctuation still gives
-- readable librdkafka statistics (kafka_brokers fills)
\set ECHO none
\i test/regress-helpers.sql
\set ECHO all

-- the HTTP endpoint's address must be an IPv4 address
ALTER SYSTEM SET streamkafka.http_listen_address = 'not-an-ip';
ALTER SYSTEM SET streamkafka.http_listen_address = '::1';
ALTER SYSTEM SET streamkafka.http_listen_address = '10.0.0.256';
ALTER SYSTEM SET streamkafka.http_listen_address = '';
ALTER SYSTEM SET streamkafka.http_listen_address = '0.0.0.0';
ALTER SYSTEM RESET streamkafka.http_listen_address;

-- a client id librdkafka cannot put into its statistics JSON is refused
-- (rdkafka_options cannot set client.id at all)
ALTER SYSTEM SET streamkafka.client_id = 'a"b\c}x';
ALTER SYSTEM SET streamkafka.client_id = 'back\slash';
ALTER SYSTEM SET streamkafka.client_id = E'tab\there';
ALTER SYSTEM SET streamkafka.rdkafka_options = 'client.id=a"b';

-- punctuation that JSON takes as it is: accepted, and the statistics of the
-- rebuilt producer are read (kafka_brokers fills again after the rebuild,
-- which starts a new mock cluster at a new address)
CREATE TABLE monitor_before AS
  SELECT kafka_health()->>'bootstrap_servers' AS bootstrap;
ALTER SYSTEM SET streamkafka.client_id = 'app 1 (eu)/{x}:y,z';
SELECT pg_reload_conf();
SELECT wait_for($$SELECT kafka_health()->>'bootstrap_servers'
                   <> (SELECT bootstrap FROM monitor_before)$$) AS producer_rebuilt;
SELECT wait_for($$SELECT count(*) = 3 FROM kafka_brokers$$) AS brokers_listed;
ALTER SYSTEM RESET streamkafka.client_id;
SELECT pg_reload_conf();

DROP TABLE monitor_before;

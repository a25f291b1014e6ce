/*
 * DebeziumRead: reads streamkafka's Kafka topics with Debezium's own JSON
 * deserializer (io.debezium.serde.DebeziumSerdes, strict) and checks that
 * every record is a valid Debezium change event or transaction metadata event.
 *
 *   DebeziumRead --bootstrap HOST:PORT --topic T [--topic T2 ...]
 *                [--transactions TXTOPIC] --expect N [--timeout SECONDS]
 *
 * Every partition of every topic is read from the beginning (assigned, no
 * consumer group) until N records in all have been read, or the timeout
 * (default 60 s) passes, which fails.  Records beyond N on the topics fail
 * too: --expect is the exact count.  Then the transactions are matched up
 * (TransactionLedger).
 *
 * Output, one tab-separated line per record:
 *   topic partition offset kind key transaction-id total_order data_collection_order
 * where kind is the op code (c u d r t), tombstone, BEGIN or END, the key is
 * compact JSON, and "-" stands for none.  Each problem follows as a line
 * "FAIL: <where>: <what> | key ... | value ..." (the first 50 are shown).  The
 * last line is "OK <records> <transactions checked>" (exit 0) or
 * "FAILED <failures> <records> <transactions checked>" (exit 1).  Bad
 * arguments, or our event classes disagreeing with Debezium's schemas: exit 2.
 *
 * The checks themselves: ChangeTopicChecker, TransactionTopicChecker,
 * SchemaCheck, TransactionLedger.
 */
package streamkafka;

import java.io.PrintStream;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

public final class DebeziumRead {
    private static final int SHOWN_FAILURES = 50;
    private static final PrintStream OUT = System.out;

    /** The command line. */
    record Options(String bootstrap, Set<String> topics, String transactions, long expect, int timeout) {
        static Options parse(String[] args) {
            String bootstrap = null;
            String transactions = null;
            Set<String> topics = new LinkedHashSet<>();
            long expect = -1;
            int timeout = 60;
            for (int i = 0; i < args.length; i += 2) {
                String option = args[i];
                if (i + 1 == args.length) {
                    throw new IllegalArgumentException(option + " needs a value");
                }
                String value = args[i + 1];
                switch (option) {
                    case "--bootstrap" -> bootstrap = value;
                    case "--topic" -> topics.add(value);
                    case "--transactions" -> transactions = value;
                    case "--expect" -> expect = Long.parseLong(value);
                    case "--timeout" -> timeout = Integer.parseInt(value);
                    default -> throw new IllegalArgumentException("unknown option " + option);
                }
            }
            if (bootstrap == null || topics.isEmpty() || expect < 0 || timeout <= 0
                    || topics.contains(transactions)) {
                throw new IllegalArgumentException("--bootstrap, at least one --topic (not the "
                        + "--transactions topic), --expect N >= 0 and a positive --timeout are needed");
            }
            return new Options(bootstrap, topics, transactions, expect, timeout);
        }
    }

    private final Options options;
    private final TransactionLedger ledger = new TransactionLedger();
    private final ChangeTopicChecker changes;
    private final TransactionTopicChecker transactions;
    private final Map<TopicPartition, Long> nextOffset = new HashMap<>();
    private long read;
    private int failures;

    private DebeziumRead(Options options, DebeziumSchemas schemas) {
        this.options = options;
        this.changes = new ChangeTopicChecker(schemas, ledger, options.transactions() != null);
        this.transactions = new TransactionTopicChecker(schemas, ledger);
    }

    public static void main(String[] args) {
        // the Kafka client's INFO chatter would bury its warnings (on stderr)
        System.setProperty("org.slf4j.simpleLogger.defaultLogLevel",
                System.getProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn"));
        Options options;
        try {
            options = Options.parse(args);
        }
        catch (IllegalArgumentException e) {
            System.err.println("DebeziumRead: " + e.getMessage());
            System.err.println("usage: DebeziumRead --bootstrap HOST:PORT --topic T [--topic T2 ...] "
                    + "[--transactions TXTOPIC] --expect N [--timeout SECONDS]");
            System.exit(2);
            return;
        }
        DebeziumSchemas schemas = new DebeziumSchemas();
        List<String> drift = schemas.checkNoDrift();
        if (!drift.isEmpty()) {
            drift.forEach(d -> OUT.println("FAIL: our event classes differ from Debezium's schema: " + d));
            System.exit(2);
        }
        System.exit(new DebeziumRead(options, schemas).run());
    }

    private int run() {
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(consumerProperties())) {
            List<TopicPartition> partitions = partitions(consumer);
            consumer.assign(partitions);
            consumer.seekToBeginning(partitions);
            consumer.beginningOffsets(partitions).forEach(nextOffset::put);
            boolean complete = consume(consumer);
            if (complete) {
                nothingBeyondExpected(consumer, partitions);
                ledger.finish(options.transactions() != null).forEach(this::fail);
            }
        }
        catch (RuntimeException e) {
            fail("reading from " + options.bootstrap() + ": " + Json.describe(e));
        }
        return finish();
    }

    private Properties consumerProperties() {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, options.bootstrap());
        p.put(ConsumerConfig.CLIENT_ID_CONFIG, "streamkafka-debezium-read");
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        // reading must not create a missing topic
        p.put(ConsumerConfig.ALLOW_AUTO_CREATE_TOPICS_CONFIG, "false");
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        return p;
    }

    /** Every partition of every topic given; a missing topic is an error. */
    private List<TopicPartition> partitions(KafkaConsumer<byte[], byte[]> consumer) {
        Set<String> all = new LinkedHashSet<>(options.topics());
        if (options.transactions() != null) {
            all.add(options.transactions());
        }
        List<TopicPartition> partitions = new ArrayList<>();
        for (String topic : all) {
            List<PartitionInfo> infos = consumer.partitionsFor(topic, Duration.ofSeconds(options.timeout()));
            if (infos == null || infos.isEmpty()) {
                throw new IllegalStateException("topic " + topic + " does not exist");
            }
            infos.forEach(info -> partitions.add(new TopicPartition(topic, info.partition())));
        }
        return partitions;
    }

    /** Reads up to --expect records; false if the timeout came first. */
    private boolean consume(KafkaConsumer<byte[], byte[]> consumer) {
        long deadline = System.nanoTime() + Duration.ofSeconds(options.timeout()).toNanos();
        while (read < options.expect()) {
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                fail("timeout after " + options.timeout() + " s: read " + read + " of " + options.expect()
                        + " records; the transactions were not matched up");
                return false;
            }
            Duration wait = Duration.ofNanos(Math.min(left, 500_000_000L));
            for (ConsumerRecord<byte[], byte[]> r : consumer.poll(wait)) {
                // records past --expect stay unread: nothingBeyondExpected() reports them
                if (read < options.expect()) {
                    handle(r);
                }
            }
        }
        return true;
    }

    private void handle(ConsumerRecord<byte[], byte[]> r) {
        read++;
        nextOffset.put(new TopicPartition(r.topic(), r.partition()), r.offset() + 1);
        Outcome o;
        try {
            o = r.topic().equals(options.transactions()) ? transactions.check(r) : changes.check(r);
        }
        catch (RuntimeException e) {
            // a bug of ours: report it with the record and go on
            o = new Outcome();
            o.problem("error in DebeziumRead while checking: " + Json.describe(e));
        }
        OUT.println(o.line(r.topic(), r.partition(), r.offset()));
        String record = " | key " + Json.text(r.key()) + " | value " + Json.text(r.value());
        o.problems.forEach(p -> fail(Json.where(r) + ": " + p + record));
    }

    /** --expect is exact: any record the topics hold past what was read is a failure. */
    private void nothingBeyondExpected(KafkaConsumer<byte[], byte[]> consumer,
                                       List<TopicPartition> partitions) {
        consumer.endOffsets(partitions).forEach((tp, end) -> {
            long next = nextOffset.get(tp);
            if (end > next) {
                fail("more records than --expect " + options.expect() + ": " + tp.topic() + " partition "
                        + tp.partition() + " has " + (end - next) + " unread, from offset " + next);
            }
        });
    }

    private void fail(String message) {
        failures++;
        if (failures <= SHOWN_FAILURES) {
            OUT.println("FAIL: " + message);
        }
    }

    private int finish() {
        if (failures > SHOWN_FAILURES) {
            OUT.println("FAIL: ... and " + (failures - SHOWN_FAILURES) + " more failures not shown");
        }
        if (failures > 0) {
            OUT.println("FAILED " + failures + " " + read + " " + ledger.checked());
            return 1;
        }
        OUT.println("OK " + read + " " + ledger.checked());
        return 0;
    }
}

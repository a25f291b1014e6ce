/*
 * ChangeTopicChecker: checks one record of a change-event topic.
 *
 *   key        Debezium's key deserializer must accept it; a Debezium key is a
 *              struct, so a JSON object (keyless tables and truncates: none).
 *   value      null = tombstone: it must repeat the key of the record before
 *              it on the same partition, and that record must be a delete.
 *              Otherwise Debezium's strict value deserializer maps it into
 *              Events.ChangeEvent, SchemaCheck holds it to Debezium's envelope
 *              schema, and then:
 *   op         exactly one of Debezium's operation codes
 *              (Envelope.Operation), with the row images it implies;
 *   snapshot   a SnapshotRecord value: "true"/"last" for op r, else "false";
 *   transaction  id, total_order and data_collection_order (positive), noted
 *              in the TransactionLedger.  With a transaction topic, every
 *              streamed event carries the block and snapshot reads do not.
 */
package streamkafka;

import com.fasterxml.jackson.databind.JsonNode;
import io.debezium.connector.AbstractSourceInfo;
import io.debezium.connector.SnapshotRecord;
import io.debezium.data.Envelope;
import io.debezium.data.Envelope.Operation;
import io.debezium.pipeline.txmetadata.TransactionStructMaker;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.Deserializer;

final class ChangeTopicChecker {
    // what our extension writes for a snapshot read; Debezium also has first,
    // first_in_data_collection, last_in_data_collection and incremental
    private static final Set<SnapshotRecord> SNAPSHOT_READ =
            EnumSet.of(SnapshotRecord.TRUE, SnapshotRecord.LAST);

    /** The record before, per partition, for the tombstone rule. */
    private record Previous(String kind, JsonNode key) {
    }

    // Object: a one-column key is unwrapped to its bare value by the serde
    private final Deserializer<Object> keys = Json.debeziumDeserializer(Object.class, true);
    private final Deserializer<Events.ChangeEvent> values =
            Json.debeziumDeserializer(Events.ChangeEvent.class, false);
    private final DebeziumSchemas schemas;
    private final TransactionLedger ledger;
    private final boolean transactionTopicGiven;
    private final String snapshotDefault;
    private final Map<TopicPartition, Previous> previous = new HashMap<>();

    ChangeTopicChecker(DebeziumSchemas schemas, TransactionLedger ledger, boolean transactionTopicGiven) {
        this.schemas = schemas;
        this.ledger = ledger;
        this.transactionTopicGiven = transactionTopicGiven;
        // Debezium leaves snapshot unset for streamed events: its schema default applies
        this.snapshotDefault = (String) schemas.source().field(AbstractSourceInfo.SNAPSHOT_KEY)
                .schema().defaultValue();
    }

    Outcome check(ConsumerRecord<byte[], byte[]> r) {
        Outcome o = new Outcome();
        JsonNode key = key(r, o);
        String kind = r.value() == null ? tombstone(r, key, o) : event(r, key, o);
        previous.put(new TopicPartition(r.topic(), r.partition()), new Previous(kind, key));
        return o;
    }

    /** The key as our parse sees it (null when absent or not JSON). */
    private JsonNode key(ConsumerRecord<byte[], byte[]> r, Outcome o) {
        if (r.key() == null) {
            return null;
        }
        int known = o.problems.size();
        Json.deserialize(keys, r.topic(), r.key(), "key", o.problems);
        Json.Parsed parsed = Json.parse(r.key());
        o.key = Json.text(r.key(), parsed);
        if (o.problems.size() == known) {
            SchemaCheck.check(parsed, schemas.rowKey, "key", o.problems);
        }
        return parsed.node();
    }

    private String tombstone(ConsumerRecord<byte[], byte[]> r, JsonNode key, Outcome o) {
        o.kind = "tombstone";
        Previous before = previous.get(new TopicPartition(r.topic(), r.partition()));
        if (key == null) {
            o.problem("tombstone without a key: it must carry the key of the row deleted before it");
        }
        else if (before == null) {
            o.problem("tombstone is the first record read on its partition; it must follow a d with its key");
        }
        else if (!Operation.DELETE.code().equals(before.kind())) {
            o.problem("tombstone follows a record of kind " + before.kind() + ", not a d (delete)");
        }
        else if (!key.equals(before.key())) {
            o.problem("tombstone key " + key + " differs from the preceding d's key " + before.key());
        }
        return o.kind;
    }

    private String event(ConsumerRecord<byte[], byte[]> r, JsonNode key, Outcome o) {
        int known = o.problems.size();
        Events.ChangeEvent e = Json.deserialize(values, r.topic(), r.value(), "value", o.problems);
        boolean accepted = o.problems.size() == known;
        Json.Parsed parsed = Json.parse(r.value());
        if (accepted) {
            // what Debezium's serde let through still has to fit its schema
            SchemaCheck.check(parsed, schemas.envelope, "value", o.problems);
        }
        if (e == null) {
            if (!accepted) {
                salvageTransaction(parsed.node(), r);
            }
            return rawOp(parsed.node(), o.kind);
        }
        o.kind = e.op == null ? "invalid" : e.op;
        Operation op = operation(e.op, o);
        if (op != null) {
            images(op, e, o);
            snapshot(op, e, o);
            if (op == Operation.TRUNCATE && key != null) {
                o.problem("op t has key " + key + "; Debezium's truncate events have no key");
            }
        }
        transaction(r, op, e, o);
        return o.kind;
    }

    /** The op of a value Debezium rejected: it still decides whether a tombstone may follow. */
    private static String rawOp(JsonNode value, String otherwise) {
        JsonNode op = value == null ? null : value.get(Envelope.FieldName.OPERATION);
        return op != null && op.isTextual() ? op.asText() : otherwise;
    }

    /**
     * A value Debezium rejected still counts for the transaction its raw JSON
     * names, so that END is not reported short as well.
     */
    private void salvageTransaction(JsonNode value, ConsumerRecord<byte[], byte[]> r) {
        JsonNode t = value == null ? null : value.path(Envelope.FieldName.TRANSACTION);
        if (t == null || !t.path(TransactionStructMaker.DEBEZIUM_TRANSACTION_ID_KEY).isTextual()) {
            return;
        }
        JsonNode source = value.path(Envelope.FieldName.SOURCE);
        ledger.event(t.path(TransactionStructMaker.DEBEZIUM_TRANSACTION_ID_KEY).asText(),
                t.path(TransactionStructMaker.DEBEZIUM_TRANSACTION_TOTAL_ORDER_KEY).asLong(),
                t.path(TransactionStructMaker.DEBEZIUM_TRANSACTION_DATA_COLLECTION_ORDER_KEY).asLong(),
                source.path(AbstractSourceInfo.SCHEMA_NAME_KEY).asText("?") + "."
                        + source.path(AbstractSourceInfo.TABLE_NAME_KEY).asText("?"),
                Json.where(r));
    }

    /** Debezium's Operation for the code, or null (and a problem) if there is none. */
    private static Operation operation(String code, Outcome o) {
        if (code == null) {
            return null; // SchemaCheck reports the missing required op
        }
        Operation op = Operation.forCode(code);
        // forCode ignores case, Debezium writes lower case only
        if (op == null || !op.code().equals(code)) {
            o.problem("op \"" + code + "\" is not one of Debezium's operation codes "
                    + Arrays.stream(Operation.values()).map(Operation::code).toList());
            return null;
        }
        if (op == Operation.MESSAGE) {
            o.problem("op m is Debezium's logical decoding message, not a row change event");
            return null;
        }
        return op;
    }

    /** The row images an op has: c and r after only, u both, d before only, t neither. */
    private static void images(Operation op, Events.ChangeEvent e, Outcome o) {
        boolean before = op == Operation.UPDATE || op == Operation.DELETE;
        boolean after = op == Operation.CREATE || op == Operation.READ || op == Operation.UPDATE;
        image("before", before, e.before, op, o);
        image("after", after, e.after, op, o);
    }

    private static void image(String name, boolean wanted, Object value, Operation op, Outcome o) {
        if (wanted && value == null) {
            o.problem("op " + op.code() + " must have a " + name + " image, it is null");
        }
        else if (!wanted && value != null) {
            o.problem("op " + op.code() + " must have " + name + " null, it is " + Json.compact(value));
        }
    }

    private void snapshot(Operation op, Events.ChangeEvent e, Outcome o) {
        if (e.source == null) {
            return; // SchemaCheck reports the missing required source
        }
        String value = e.source.snapshot == null ? snapshotDefault : e.source.snapshot;
        SnapshotRecord record = Arrays.stream(SnapshotRecord.values())
                .filter(s -> s.name().toLowerCase().equals(value)).findFirst().orElse(null);
        if (record == null) {
            return; // not a Debezium value: SchemaCheck reports it against the enum's allowed list
        }
        if (op == Operation.READ && !SNAPSHOT_READ.contains(record)) {
            o.problem("op r has source.snapshot \"" + value + "\"; a snapshot read has \"true\" or \"last\"");
        }
        else if (op != Operation.READ && record != SnapshotRecord.FALSE) {
            o.problem("op " + op.code() + " has source.snapshot \"" + value
                    + "\"; a streamed change has \"false\"");
        }
    }

    private void transaction(ConsumerRecord<byte[], byte[]> r, Operation op, Events.ChangeEvent e,
                             Outcome o) {
        Events.TransactionBlock t = e.transaction;
        if (t == null) {
            if (transactionTopicGiven && op != null && op != Operation.READ) {
                o.problem("op " + op.code() + " has no transaction block, but transaction metadata is on"
                        + " (a transaction topic was given)");
            }
            return;
        }
        o.txId = Outcome.orDash(t.id);
        o.totalOrder = Outcome.orDash(t.totalOrder);
        o.dataCollectionOrder = Outcome.orDash(t.dataCollectionOrder);
        if (op == Operation.READ) {
            o.problem("op r has a transaction block; Debezium's snapshot reads have none");
        }
        if (t.id == null || t.id.isEmpty() || !positive(t.totalOrder) || !positive(t.dataCollectionOrder)) {
            o.problem("transaction block needs a non-empty id and positive total_order and "
                    + "data_collection_order");
            return;
        }
        ledger.event(t.id, t.totalOrder, t.dataCollectionOrder, collection(e.source), Json.where(r));
    }

    private static boolean positive(Long n) {
        return n != null && n > 0;
    }

    /** Debezium's data collection name for PostgreSQL: schema.table. */
    private static String collection(Events.Source source) {
        return source == null ? "?" : source.schema + "." + source.table;
    }
}

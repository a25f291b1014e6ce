/*
 * TransactionTopicChecker: checks one record of the transaction metadata
 * topic.  The key must be Debezium's {"id": "<id>"} with the value's id; the
 * value is never null and maps strictly into Events.TransactionEvent, held to
 * SchemaFactory's transaction value schema:
 *   BEGIN  event_count and data_collections null;
 *   END    event_count N and data_collections [{data_collection, event_count}]
 *          with distinct collections, positive counts adding up to N.
 * The status must be a TransactionStatus.  BEGINs and ENDs go to the
 * TransactionLedger, which matches them with the change events.
 */
package streamkafka;

import io.debezium.pipeline.txmetadata.TransactionStatus;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.serialization.Deserializer;

final class TransactionTopicChecker {
    // the key struct has one field, id: the serde unwraps it to the bare string
    private final Deserializer<String> keys = Json.debeziumDeserializer(String.class, true);
    private final Deserializer<Events.TransactionEvent> values =
            Json.debeziumDeserializer(Events.TransactionEvent.class, false);
    private final DebeziumSchemas schemas;
    private final TransactionLedger ledger;

    TransactionTopicChecker(DebeziumSchemas schemas, TransactionLedger ledger) {
        this.schemas = schemas;
        this.ledger = ledger;
    }

    Outcome check(ConsumerRecord<byte[], byte[]> r) {
        Outcome o = new Outcome();
        String keyId = key(r, o);
        if (r.value() == null) {
            o.kind = "tombstone";
            o.problem("null value on the transaction topic: Debezium writes only BEGIN and END there");
            return o;
        }
        Events.TransactionEvent e = value(r, o);
        if (e == null) {
            return o;
        }
        o.kind = String.valueOf(e.status);
        o.txId = Outcome.orDash(e.id);
        if (keyId != null && !keyId.equals(e.id)) {
            o.problem("key id \"" + keyId + "\" differs from the value's id \"" + e.id + "\"");
        }
        TransactionStatus status = status(e.status, o);
        if (status == TransactionStatus.BEGIN) {
            begin(r, e, o);
        }
        else if (status == TransactionStatus.END) {
            end(r, e, o);
        }
        return o;
    }

    /** The id in the key, or null when there is none or it is not Debezium's key. */
    private String key(ConsumerRecord<byte[], byte[]> r, Outcome o) {
        if (r.key() == null) {
            o.problem("no key: Debezium keys transaction events by {\"id\": ...}");
            return null;
        }
        int known = o.problems.size();
        String id = Json.deserialize(keys, r.topic(), r.key(), "key", o.problems);
        Json.Parsed parsed = Json.parse(r.key());
        o.key = Json.text(r.key(), parsed);
        if (o.problems.size() == known) {
            SchemaCheck.check(parsed, schemas.txKey, "key", o.problems);
        }
        return o.problems.size() == known ? id : null;
    }

    private Events.TransactionEvent value(ConsumerRecord<byte[], byte[]> r, Outcome o) {
        int known = o.problems.size();
        Events.TransactionEvent e = Json.deserialize(values, r.topic(), r.value(), "value", o.problems);
        if (o.problems.size() == known) {
            SchemaCheck.check(Json.parse(r.value()), schemas.txValue, "value", o.problems);
        }
        return e;
    }

    private static TransactionStatus status(String status, Outcome o) {
        for (TransactionStatus s : TransactionStatus.values()) {
            if (s.name().equals(status)) {
                return s;
            }
        }
        if (status != null) {
            o.problem("status \"" + status + "\" is not one of Debezium's "
                    + Arrays.toString(TransactionStatus.values()));
        }
        return null;
    }

    private void begin(ConsumerRecord<byte[], byte[]> r, Events.TransactionEvent e, Outcome o) {
        if (e.eventCount != null || e.dataCollections != null) {
            o.problem("BEGIN must have event_count and data_collections null");
        }
        if (e.id != null) {
            addIfNotNull(o, ledger.begin(e.id, Json.where(r)));
        }
    }

    private void end(ConsumerRecord<byte[], byte[]> r, Events.TransactionEvent e, Outcome o) {
        if (e.eventCount == null || e.dataCollections == null) {
            o.problem("END must have event_count and data_collections");
            return;
        }
        Map<String, Long> counts = collectionCounts(e, o);
        // noted even when inconsistent, so its events are still matched against it
        if (e.id != null) {
            addIfNotNull(o, ledger.end(e.id, e.eventCount, counts, Json.where(r), Json.text(r.value())));
        }
    }

    /** END's per-collection counts; inconsistencies are added to the problems. */
    private static Map<String, Long> collectionCounts(Events.TransactionEvent e, Outcome o) {
        Map<String, Long> counts = new LinkedHashMap<>();
        long sum = 0;
        for (Events.DataCollection c : e.dataCollections) {
            if (c == null || c.dataCollection == null || c.eventCount == null || c.eventCount < 1) {
                o.problem("data_collections entry needs a data_collection and a positive event_count");
                continue;
            }
            if (counts.put(c.dataCollection, c.eventCount) != null) {
                o.problem("data collection " + c.dataCollection + " is listed twice");
            }
            sum += c.eventCount;
        }
        if (sum != e.eventCount) {
            o.problem("END event_count " + e.eventCount + " is not the sum " + sum
                    + " of its data_collections' event_count");
        }
        return counts;
    }

    private static void addIfNotNull(Outcome o, String problem) {
        if (problem != null) {
            o.problem(problem);
        }
    }
}

/*
 * Json: small helpers around one record's bytes: running a Debezium
 * deserializer so that what it throws becomes a reported problem, our own
 * strict parse of the same bytes (for SchemaCheck, key comparison and
 * printing), and text for the output lines.
 */
package streamkafka;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.debezium.serde.DebeziumSerdes;
import io.debezium.serde.json.JsonSerdeConfig;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;

final class Json {
    private static final int MAX_TEXT = 2000;

    // duplicate property names are an error here: Jackson (and so Debezium's
    // serde) would silently keep the last one
    private static final ObjectMapper STRICT = new ObjectMapper()
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);

    private Json() {
    }

    /** Our own parse of a record's bytes: the tree, or why it is not JSON. */
    record Parsed(JsonNode node, String error) {
    }

    /**
     * Debezium's JSON deserializer for type, strict: with
     * unknown.properties.ignored=false a property type does not declare fails.
     */
    static <T> Deserializer<T> debeziumDeserializer(Class<T> type, boolean isKey) {
        Serde<T> serde = DebeziumSerdes.payloadJson(type);
        serde.configure(Map.of(JsonSerdeConfig.UNKNOWN_PROPERTIES_IGNORED.name(), false), isKey);
        return serde.deserializer();
    }

    /** Runs a Debezium deserializer; what it throws is added to problems and null returned. */
    static <T> T deserialize(Deserializer<T> deserializer, String topic, byte[] data, String what,
                             List<String> problems) {
        try {
            return deserializer.deserialize(topic, data);
        }
        catch (RuntimeException e) {
            problems.add(what + " rejected by Debezium's deserializer: " + describe(e));
            return null;
        }
    }

    static Parsed parse(byte[] data) {
        try {
            return new Parsed(STRICT.readTree(data), null);
        }
        catch (Exception e) {
            return new Parsed(null, describe(e));
        }
    }

    /** The innermost cause's class and message on one line (JsonSerde wraps Jackson's). */
    static String describe(Throwable e) {
        Throwable root = e;
        while (root.getCause() != null && root.getCause() != root) {
            root = root.getCause();
        }
        return root.getClass().getSimpleName() + ": " + oneLine(String.valueOf(root.getMessage()));
    }

    /** A record part for output: compact JSON when it parsed, else its text; "-" for null. */
    static String text(byte[] data, Parsed parsed) {
        if (data == null) {
            return "-";
        }
        String s = parsed != null && parsed.node() != null ? parsed.node().toString()
                : new String(data, StandardCharsets.UTF_8);
        s = oneLine(s);
        return s.length() <= MAX_TEXT ? s : s.substring(0, MAX_TEXT) + "...(" + s.length() + " chars)";
    }

    /** A deserialized value as compact JSON, for messages. */
    static String compact(Object value) {
        try {
            return STRICT.writeValueAsString(value);
        }
        catch (Exception e) {
            return String.valueOf(value);
        }
    }

    static String text(byte[] data) {
        return text(data, data == null ? null : parse(data));
    }

    /** Where a record is, for FAIL lines. */
    static String where(ConsumerRecord<?, ?> r) {
        return r.topic() + " partition " + r.partition() + " offset " + r.offset();
    }

    private static String oneLine(String s) {
        return s.replaceAll("\\s+", " ").trim();
    }
}

/*
 * SchemaCheck: does a JSON tree have the shape Kafka's JsonConverter
 * (schemas.enable=false) gives a value of Debezium's Connect schema?
 *
 * DebeziumSerdes alone does not tell: Jackson turns "771" into a Long and 771
 * into a String, lets required fields be missing, and the serde silently
 * unwraps a {"schema":...,"payload":...} wrapper, which our schemaless format
 * must not have.  So each field is checked here for:
 *   - being declared by Debezium (any other field is reported),
 *   - presence when Debezium's schema makes it required (not optional),
 *   - its JSON type, and for Debezium's enum strings (io.debezium.data.Enum,
 *     e.g. source.snapshot) the value against the schema's allowed list.
 * An optional field may be absent: the deserializer reads it as null.
 * A struct schema without fields (the envelope's row images) accepts any object.
 */
package streamkafka;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import org.apache.kafka.connect.data.Field;
import org.apache.kafka.connect.data.Schema;

final class SchemaCheck {
    // the wrapper Kafka's JsonConverter writes with schemas.enable=true
    private static final String SCHEMA = "schema";
    private static final String PAYLOAD = "payload";

    private final List<String> problems;

    private SchemaCheck(List<String> problems) {
        this.problems = problems;
    }

    /**
     * Adds one message per mismatch of a record's key or value (our parse of
     * it) against schema to problems.
     */
    static void check(Json.Parsed parsed, Schema schema, String path, List<String> problems) {
        JsonNode node = parsed.node();
        if (node == null) {
            problems.add(path + " fails a strict JSON parse: " + parsed.error());
        }
        else if (node.isObject() && node.has(PAYLOAD) && node.has(SCHEMA)) {
            problems.add(path + " has a {\"schema\", \"payload\"} wrapper (schemas.enable=true): "
                    + "Debezium's serde unwraps it, but our format is schemaless");
        }
        else {
            new SchemaCheck(problems).value(node, schema, path);
        }
    }

    private void value(JsonNode node, Schema schema, String path) {
        if (node == null || node.isNull()) {
            if (!schema.isOptional()) {
                problems.add(path + " is required by Debezium's schema but is "
                        + (node == null ? "missing" : "null"));
            }
            return;
        }
        switch (schema.type()) {
            case STRUCT -> struct(node, schema, path);
            case ARRAY -> array(node, schema, path);
            case INT8, INT16, INT32, INT64 -> expect(node.isIntegralNumber() && node.canConvertToLong(),
                    node, schema, path);
            case FLOAT32, FLOAT64 -> expect(node.isNumber(), node, schema, path);
            case BOOLEAN -> expect(node.isBoolean(), node, schema, path);
            case STRING -> string(node, schema, path);
            case BYTES -> expect(node.isTextual(), node, schema, path); // base64
            case MAP -> expect(node.isObject() || node.isArray(), node, schema, path);
        }
    }

    private void struct(JsonNode node, Schema schema, String path) {
        if (!expect(node.isObject(), node, schema, path) || schema.fields().isEmpty()) {
            return;
        }
        for (Iterator<String> names = node.fieldNames(); names.hasNext();) {
            String name = names.next();
            if (schema.field(name) == null) {
                problems.add(join(path, name) + " is not a field of Debezium's schema "
                        + DebeziumSchemas.fieldNames(schema));
            }
        }
        for (Field field : schema.fields()) {
            value(node.get(field.name()), field.schema(), join(path, field.name()));
        }
    }

    private void array(JsonNode node, Schema schema, String path) {
        if (expect(node.isArray(), node, schema, path)) {
            for (int i = 0; i < node.size(); i++) {
                value(node.get(i), schema.valueSchema(), path + "[" + i + "]");
            }
        }
    }

    private void string(JsonNode node, Schema schema, String path) {
        if (!expect(node.isTextual(), node, schema, path)) {
            return;
        }
        if (io.debezium.data.Enum.LOGICAL_NAME.equals(schema.name())) {
            List<String> allowed = Arrays.asList(
                    schema.parameters().get(io.debezium.data.Enum.VALUES_FIELD).split(","));
            if (!allowed.contains(node.textValue())) {
                problems.add(path + " is " + node + ", not one of Debezium's values " + allowed);
            }
        }
    }

    private boolean expect(boolean ok, JsonNode node, Schema schema, String path) {
        if (!ok) {
            problems.add(path + " is " + node.getNodeType().toString().toLowerCase() + " " + node
                    + " but Debezium's schema has " + schema.type().getName());
        }
        return ok;
    }

    private static String join(String path, String name) {
        return path + "." + name;
    }
}

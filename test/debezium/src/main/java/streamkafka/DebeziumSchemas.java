/*
 * DebeziumSchemas: the Kafka Connect schemas Debezium 3.6.1 itself builds for
 * a PostgreSQL change event and for the transaction topic, taken from
 * Debezium's classes rather than written down here:
 *
 *   envelope        Envelope.defineSchema() (before, after, source, op, ts_*,
 *                   transaction) with
 *   source          PostgresSourceInfoStructMaker's source block, and
 *   txKey, txValue  SchemaFactory's transaction topic key and value;
 *   rowKey          a change event's key: a struct of the key columns.
 *
 * They give SchemaCheck the field types and which fields are required, and
 * checkNoDrift() holds the Events classes to exactly these field sets.
 */
package streamkafka;

import com.fasterxml.jackson.annotation.JsonProperty;
import io.debezium.config.CommonConnectorConfig;
import io.debezium.config.Configuration;
import io.debezium.connector.postgresql.Module;
import io.debezium.connector.postgresql.PostgresConnectorConfig;
import io.debezium.connector.postgresql.PostgresSourceInfoStructMaker;
import io.debezium.data.Envelope;
import io.debezium.pipeline.txmetadata.TransactionStructMaker;
import io.debezium.schema.SchemaFactory;
import io.debezium.schema.SchemaNameAdjuster;
import java.lang.reflect.Field;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import org.apache.kafka.connect.data.Schema;
import org.apache.kafka.connect.data.SchemaBuilder;

final class DebeziumSchemas {
    final Schema envelope;
    // a change event's key is the struct of the table's key columns: any object here
    final Schema rowKey = SchemaBuilder.struct().build();
    final Schema txKey;
    final Schema txValue;

    DebeziumSchemas() {
        envelope = Envelope.defineSchema()
                .withName("streamkafka.Envelope")
                // a row image is any object: an empty struct means free-form to SchemaCheck
                .withRecord(SchemaBuilder.struct().optional().build())
                .withSource(postgresSource())
                .build()
                .schema();
        SchemaFactory factory = SchemaFactory.get();
        txKey = factory.transactionKeySchema(SchemaNameAdjuster.NO_OP);
        txValue = factory.transactionValueSchema(SchemaNameAdjuster.NO_OP);
    }

    /** The source block exactly as Debezium's PostgreSQL connector declares it. */
    private static Schema postgresSource() {
        // the struct maker only reads the logical (server) name from the config
        PostgresConnectorConfig config = new PostgresConnectorConfig(Configuration.create()
                .with(CommonConnectorConfig.TOPIC_PREFIX, "streamkafka")
                .build());
        PostgresSourceInfoStructMaker maker = new PostgresSourceInfoStructMaker();
        maker.init(Module.name(), Module.version(), config);
        return maker.schema();
    }

    Schema source() {
        return envelope.field(Envelope.FieldName.SOURCE).schema();
    }

    Schema transactionBlock() {
        return envelope.field(Envelope.FieldName.TRANSACTION).schema();
    }

    Schema dataCollection() {
        return txValue.field(TransactionStructMaker.DEBEZIUM_TRANSACTION_DATA_COLLECTIONS_KEY)
                .schema().valueSchema();
    }

    /**
     * Differences between each Events class and the Debezium schema it must
     * match, one message per class; empty when they agree.
     */
    List<String> checkNoDrift() {
        List<String> problems = new ArrayList<>();
        compare(Events.ChangeEvent.class, envelope, problems);
        compare(Events.Source.class, source(), problems);
        compare(Events.TransactionBlock.class, transactionBlock(), problems);
        compare(Events.TransactionEvent.class, txValue, problems);
        compare(Events.DataCollection.class, dataCollection(), problems);
        return problems;
    }

    private static void compare(Class<?> type, Schema schema, List<String> problems) {
        Set<String> ours = jsonProperties(type);
        Set<String> debeziums = fieldNames(schema);
        if (!ours.equals(debeziums)) {
            problems.add(type.getSimpleName() + " has fields " + ours
                    + " but Debezium " + Module.version() + " defines " + debeziums);
        }
    }

    static Set<String> jsonProperties(Class<?> type) {
        Set<String> names = new TreeSet<>();
        for (Field field : type.getDeclaredFields()) {
            JsonProperty property = field.getAnnotation(JsonProperty.class);
            if (property != null) {
                names.add(property.value());
            }
        }
        return names;
    }

    static Set<String> fieldNames(Schema schema) {
        Set<String> names = new TreeSet<>();
        schema.fields().forEach(f -> names.add(f.name()));
        return names;
    }
}

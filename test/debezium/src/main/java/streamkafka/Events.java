/*
 * Events: the Java classes Debezium's JSON deserializer (DebeziumSerdes)
 * maps our records into.  The deserializer runs strict
 * (unknown.properties.ignored=false), so a JSON property that is not one of
 * these fields fails the record.  Every property name is one of Debezium's
 * own constants, and DebeziumSchemas.checkNoDrift() compares each class's
 * property set with the field set of Debezium's Connect schema for the same
 * structure, so this list cannot drift from Debezium's.
 */
package streamkafka;

import com.fasterxml.jackson.annotation.JsonProperty;
import io.debezium.connector.AbstractSourceInfo;
import io.debezium.connector.postgresql.SourceInfo;
import io.debezium.data.Envelope.FieldName;
import io.debezium.pipeline.txmetadata.TransactionStructMaker;
import java.util.List;
import java.util.Map;

public final class Events {
    private Events() {
    }

    /** A change event's value: Debezium's envelope (Envelope.FieldName). */
    public static final class ChangeEvent {
        // row images are free-form objects: their columns are the table's
        @JsonProperty(FieldName.BEFORE) public Map<String, Object> before;
        @JsonProperty(FieldName.AFTER) public Map<String, Object> after;
        @JsonProperty(FieldName.SOURCE) public Source source;
        @JsonProperty(FieldName.OPERATION) public String op;
        @JsonProperty(FieldName.TIMESTAMP) public Long tsMs;
        @JsonProperty(FieldName.TIMESTAMP_US) public Long tsUs;
        @JsonProperty(FieldName.TIMESTAMP_NS) public Long tsNs;
        @JsonProperty(FieldName.TRANSACTION) public TransactionBlock transaction;
    }

    /**
     * The source block of Debezium's PostgreSQL connector: the fields common
     * to all connectors (AbstractSourceInfo) and PostgreSQL's (SourceInfo).
     */
    public static final class Source {
        @JsonProperty(AbstractSourceInfo.DEBEZIUM_VERSION_KEY) public String version;
        @JsonProperty(AbstractSourceInfo.DEBEZIUM_CONNECTOR_KEY) public String connector;
        @JsonProperty(AbstractSourceInfo.SERVER_NAME_KEY) public String name;
        @JsonProperty(AbstractSourceInfo.TIMESTAMP_KEY) public Long tsMs;
        @JsonProperty(AbstractSourceInfo.TIMESTAMP_US_KEY) public Long tsUs;
        @JsonProperty(AbstractSourceInfo.TIMESTAMP_NS_KEY) public Long tsNs;
        @JsonProperty(AbstractSourceInfo.SNAPSHOT_KEY) public String snapshot;
        @JsonProperty(AbstractSourceInfo.DATABASE_NAME_KEY) public String db;
        @JsonProperty(AbstractSourceInfo.SEQUENCE_KEY) public String sequence;
        @JsonProperty(AbstractSourceInfo.SCHEMA_NAME_KEY) public String schema;
        @JsonProperty(AbstractSourceInfo.TABLE_NAME_KEY) public String table;
        @JsonProperty(SourceInfo.TXID_KEY) public Long txId;
        @JsonProperty(SourceInfo.LSN_KEY) public Long lsn;
        @JsonProperty(SourceInfo.XMIN_KEY) public Long xmin;
        // Debezium 3.x PostgreSQL adds the replication origin (optional)
        @JsonProperty(SourceInfo.ORIGIN_KEY) public String origin;
        @JsonProperty(SourceInfo.ORIGIN_LSN_KEY) public Long originLsn;
    }

    /** The envelope's transaction block (TransactionStructMaker). */
    public static final class TransactionBlock {
        @JsonProperty(TransactionStructMaker.DEBEZIUM_TRANSACTION_ID_KEY) public String id;
        @JsonProperty(TransactionStructMaker.DEBEZIUM_TRANSACTION_TOTAL_ORDER_KEY) public Long totalOrder;
        @JsonProperty(TransactionStructMaker.DEBEZIUM_TRANSACTION_DATA_COLLECTION_ORDER_KEY)
        public Long dataCollectionOrder;
    }

    /** A value on the transaction topic: BEGIN or END (TransactionStructMaker). */
    public static final class TransactionEvent {
        @JsonProperty(TransactionStructMaker.DEBEZIUM_TRANSACTION_STATUS_KEY) public String status;
        @JsonProperty(TransactionStructMaker.DEBEZIUM_TRANSACTION_ID_KEY) public String id;
        @JsonProperty(TransactionStructMaker.DEBEZIUM_TRANSACTION_EVENT_COUNT_KEY) public Long eventCount;
        @JsonProperty(TransactionStructMaker.DEBEZIUM_TRANSACTION_DATA_COLLECTIONS_KEY)
        public List<DataCollection> dataCollections;
        @JsonProperty(TransactionStructMaker.DEBEZIUM_TRANSACTION_TS_MS) public Long tsMs;
    }

    /** One element of an END event's data_collections. */
    public static final class DataCollection {
        @JsonProperty(TransactionStructMaker.DEBEZIUM_TRANSACTION_COLLECTION_KEY)
        public String dataCollection;
        @JsonProperty(TransactionStructMaker.DEBEZIUM_TRANSACTION_EVENT_COUNT_KEY) public Long eventCount;
    }
}

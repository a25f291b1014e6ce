/*
 * Outcome: what checking one record found: the columns of its output line
 * and the problems to print as FAIL lines after it.
 */
package streamkafka;

import java.util.ArrayList;
import java.util.List;

final class Outcome {
    String kind = "invalid";    // op code, tombstone, BEGIN or END
    String key = "-";
    String txId = "-";
    String totalOrder = "-";
    String dataCollectionOrder = "-";
    final List<String> problems = new ArrayList<>();

    void problem(String what) {
        problems.add(what);
    }

    /** topic, partition, offset, kind, key, transaction id, total_order, data_collection_order */
    String line(String topic, int partition, long offset) {
        return String.join("\t", topic, Integer.toString(partition), Long.toString(offset),
                kind, key, txId, totalOrder, dataCollectionOrder);
    }

    static String orDash(Object value) {
        return value == null ? "-" : value.toString();
    }
}

/*
 * TransactionLedger: per transaction id, what the change events' transaction
 * blocks and the transaction topic's BEGIN and END said, and at the end the
 * checks that they agree the way Debezium's TransactionMonitor makes them:
 *   - the events carrying an id number exactly END's event_count and their
 *     total_order values are exactly 1..event_count;
 *   - per data collection (source.schema + "." + source.table) the count
 *     equals END's data_collections entry and data_collection_order runs
 *     exactly 1..n;
 *   - when the transaction topic was read: every id has a BEGIN and an END.
 * Tombstones carry no transaction block, so they are not counted (as in
 * Debezium); truncate events are.
 */
package streamkafka;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

final class TransactionLedger {
    private static final class Tx {
        String beginAt;          // where BEGIN was read, null if not seen
        String endAt;            // where END was read
        String endJson;
        Map<String, Long> endCounts;   // END's data_collections
        long endEventCount;
        String firstEventAt;     // first change event carrying the id
        final List<Long> totalOrders = new ArrayList<>();
        final Map<String, List<Long>> collectionOrders = new TreeMap<>();
    }

    private final Map<String, Tx> txs = new LinkedHashMap<>();
    private int checked;

    private Tx tx(String id) {
        return txs.computeIfAbsent(id, k -> new Tx());
    }

    /** A change event's transaction block. */
    void event(String id, long totalOrder, long collectionOrder, String collection, String where) {
        Tx tx = tx(id);
        if (tx.firstEventAt == null) {
            tx.firstEventAt = where;
        }
        tx.totalOrders.add(totalOrder);
        tx.collectionOrders.computeIfAbsent(collection, k -> new ArrayList<>()).add(collectionOrder);
    }

    /** A BEGIN; returns a problem or null. */
    String begin(String id, String where) {
        Tx tx = tx(id);
        if (tx.beginAt != null) {
            return "second BEGIN for transaction " + id + " (first at " + tx.beginAt + ")";
        }
        tx.beginAt = where;
        return null;
    }

    /** An END whose fields were already checked; returns a problem or null. */
    String end(String id, long eventCount, Map<String, Long> counts, String where, String json) {
        Tx tx = tx(id);
        if (tx.endAt != null) {
            return "second END for transaction " + id + " (first at " + tx.endAt + ")";
        }
        tx.endAt = where;
        tx.endJson = json;
        tx.endEventCount = eventCount;
        tx.endCounts = counts;
        return tx.beginAt == null ? "END for transaction " + id + " without a BEGIN before it" : null;
    }

    /** Transactions whose END was checked against their events. */
    int checked() {
        return checked;
    }

    /** The end-of-run checks; one message per problem. */
    List<String> finish(boolean transactionTopicRead) {
        List<String> problems = new ArrayList<>();
        txs.forEach((id, tx) -> {
            if (tx.endAt != null) {
                checkAgainstEnd(id, tx, problems);
                checked++;
            }
            if (transactionTopicRead) {
                checkComplete(id, tx, problems);
            }
        });
        return problems;
    }

    private static void checkAgainstEnd(String id, Tx tx, List<String> problems) {
        String end = " (END at " + tx.endAt + ": " + tx.endJson + ")";
        if (!isOneTo(tx.totalOrders, tx.endEventCount)) {
            problems.add("transaction " + id + ": END says event_count " + tx.endEventCount
                    + " but the change events carry total_order " + sorted(tx.totalOrders)
                    + ", not exactly 1.." + tx.endEventCount + end);
        }
        if (!tx.endCounts.keySet().equals(tx.collectionOrders.keySet())) {
            problems.add("transaction " + id + ": END lists data collections " + tx.endCounts.keySet()
                    + " but the change events are in " + tx.collectionOrders.keySet() + end);
        }
        tx.collectionOrders.forEach((collection, orders) -> {
            Long n = tx.endCounts.get(collection);
            if (n != null && !isOneTo(orders, n)) {
                problems.add("transaction " + id + ": END says " + collection + " has " + n
                        + " events but they carry data_collection_order " + sorted(orders)
                        + ", not exactly 1.." + n + end);
            }
        });
    }

    private static void checkComplete(String id, Tx tx, List<String> problems) {
        String events = tx.firstEventAt == null ? "" : " (first change event at " + tx.firstEventAt + ")";
        if (tx.beginAt == null && tx.endAt == null) {
            problems.add("transaction " + id + " has no BEGIN and no END on the transaction topic" + events);
        }
        else if (tx.endAt == null) {
            problems.add("transaction " + id + " has a BEGIN (at " + tx.beginAt + ") but no END" + events);
        }
    }

    /** Are values exactly 1..n, each once? */
    private static boolean isOneTo(List<Long> values, long n) {
        if (values.size() != n) {
            return false;
        }
        List<Long> s = sorted(values);
        for (int i = 0; i < s.size(); i++) {
            if (s.get(i) != i + 1) {
                return false;
            }
        }
        return true;
    }

    private static List<Long> sorted(List<Long> values) {
        List<Long> s = new ArrayList<>(values);
        Collections.sort(s);
        return s;
    }
}

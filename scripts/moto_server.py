"""moto_server with two fixes TrialWatch depends on: DynamoDB TransactWriteItems
that is atomic under concurrency and costs O(items in the transaction), and
Query that costs O(partition) instead of sorting the whole table.

moto 5.2.5 backs up a transaction by deep-copying every table it touches, once
per item, and rolls back by swapping the copy in. That makes each transaction
O(table size) (a 10,000-submission demo becomes quadratic: minutes per request
once the table is large), and concurrent requests race: a deepcopy iterating a
table while another thread writes to it fails with "dictionary changed size
during iteration" (HTTP 500), and a rollback can silently undo another
request's writes.

The fix keeps moto's own evaluation of every operation, but:
  * transactions run one at a time (a process-wide lock), as DynamoDB
    serialises conflicting transactions;
  * the backup is the prior version of each item the transaction names, and a
    cancelled transaction restores exactly those items.

moto 5.2.5's Query starts from `Table.all_items()`, which sorts every item of
the table, then filters by key: each Query costs O(n log n) in the table size,
so reports and alert lists slow to seconds per query on a demo-sized table.
During a Query, `all_items()` now yields the queried partition (base table) or
the unsorted items (an index, which the Query sorts itself), so results and
their order are unchanged.

Usage: python moto_server.py [moto_server arguments...]   (same as moto_server)
       python moto_server.py --selftest                   (checks the fixes, exits)
"""

import copy
import sys
import threading

PATCHED_FOR = "5.2.5"
# moto's own implementations, for the selftest's reference answers.
ORIGINALS = {}


def apply():
    import moto
    from moto.dynamodb import models as dynamodb_models
    from moto.dynamodb.models.table import Table

    if moto.__version__ != PATCHED_FOR:
        print(
            f"moto_server.py: moto {moto.__version__} is not {PATCHED_FOR}; TransactWriteItems left unpatched",
            file=sys.stderr,
        )
        return False

    backend_cls = dynamodb_models.DynamoDBBackend
    original = backend_cls.transact_write_items
    lock = threading.RLock()

    class _TablesAreNotCopied:
        """Stands in for the `copy` module inside moto.dynamodb.models: tables
        are "copied" as themselves (so moto's own whole-table rollback becomes
        a no-op), everything else is copied as before."""

        def __getattr__(self, name):
            return getattr(copy, name)

        @staticmethod
        def deepcopy(value, memo=None):
            if isinstance(value, Table):
                return value
            return copy.deepcopy(value, memo)

    dynamodb_models.copy = _TablesAreNotCopied()

    def item_key(backend, op_type, op):
        table = backend.get_table(op["TableName"])
        if op_type == "Put":
            attrs = op["Item"]
            key = {table.hash_key_attr: attrs[table.hash_key_attr]}
            if table.range_key_attr is not None:
                key[table.range_key_attr] = attrs[table.range_key_attr]
            return key
        return op["Key"]

    def transact_write_items(self, transact_items):
        with lock:
            before = []
            for entry in transact_items:
                try:
                    op_type, op = next(iter(entry.items()))
                    if op_type == "ConditionCheck":
                        continue
                    key = item_key(self, op_type, op)
                    current = self.get_item(op["TableName"], key)
                    prior = copy.deepcopy(current.to_json()["Attributes"]) if current else None
                    before.append((op["TableName"], key, prior))
                except Exception:
                    # A malformed entry: moto's own validation below reports it,
                    # before anything is written.
                    continue
            try:
                return original(self, transact_items)
            except Exception:
                for table_name, key, prior in reversed(before):
                    try:
                        if prior is None:
                            if self.get_item(table_name, key) is not None:
                                self.delete_item(table_name, key)
                        else:
                            self.put_item(table_name, prior)
                    except Exception as e:  # pragma: no cover - best effort, reported
                        print(f"moto_server.py: rollback of {table_name} failed: {e}", file=sys.stderr)
                raise

    backend_cls.transact_write_items = transact_write_items

    scope = threading.local()
    original_all_items = Table.all_items
    original_query = Table.query

    def all_items(self):
        if getattr(scope, "table", None) is not self:
            return original_all_items(self)
        hash_key = scope.hash_key
        if hash_key is not None:
            partition = self.items.get(hash_key)
            if partition is None:
                return []
            return list(partition.values()) if self.range_key_attr else [partition]
        out = []
        for partition in self.items.values():
            if self.range_key_attr:
                out.extend(partition.values())
            else:
                out.append(partition)
        return out

    def query(self, hash_key, *args, **kwargs):
        index_name = kwargs.get("index_name", args[6] if len(args) > 6 else None)
        previous = (getattr(scope, "table", None), getattr(scope, "hash_key", None))
        if index_name is None and hash_key is None:
            scope.table, scope.hash_key = None, None
        else:
            scope.table, scope.hash_key = self, (None if index_name else hash_key)
        try:
            return original_query(self, hash_key, *args, **kwargs)
        finally:
            scope.table, scope.hash_key = previous

    ORIGINALS.update(query=original_query, all_items=original_all_items)
    Table.all_items = all_items
    Table.query = query
    return True


def selftest():
    import time

    import boto3
    from moto import mock_aws

    assert apply(), "patch not applied"
    with mock_aws():
        c = boto3.client("dynamodb", region_name="us-east-1")
        c.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk", "g", "h")],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "gsi",
                    "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}, {"AttributeName": "h", "KeyType": "RANGE"}],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
        )

        def put(pk, sk, v, cond=None):
            p = {"TableName": "t", "Item": {"pk": {"S": pk}, "sk": {"S": sk}, "v": {"S": v}}}
            if cond:
                p["ConditionExpression"] = cond
            return {"Put": p}

        # A cancelled transaction leaves no trace: the first put is undone.
        c.put_item(TableName="t", Item={"pk": {"S": "a"}, "sk": {"S": "1"}, "v": {"S": "old"}})
        c.put_item(TableName="t", Item={"pk": {"S": "b"}, "sk": {"S": "1"}, "v": {"S": "taken"}})
        try:
            c.transact_write_items(
                TransactItems=[put("a", "1", "new"), put("c", "1", "new"), put("b", "1", "x", "attribute_not_exists(pk)")]
            )
            raise AssertionError("the condition should have cancelled the transaction")
        except c.exceptions.TransactionCanceledException:
            pass
        assert c.get_item(TableName="t", Key={"pk": {"S": "a"}, "sk": {"S": "1"}})["Item"]["v"]["S"] == "old"
        assert "Item" not in c.get_item(TableName="t", Key={"pk": {"S": "c"}, "sk": {"S": "1"}})
        assert c.get_item(TableName="t", Key={"pk": {"S": "b"}, "sk": {"S": "1"}})["Item"]["v"]["S"] == "taken"

        # Queries (base table and index) return what moto's own would, in the same order.
        from moto.dynamodb.models.table import Table as _T

        for i in range(300):
            c.put_item(TableName="t", Item={"pk": {"S": f"q{i % 7}"}, "sk": {"S": f"{i:04d}"}, "g": {"S": f"G{i % 5}"}, "h": {"S": f"{i % 11:02d}"}})
        queries = [
            dict(KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "q3"}}),
            dict(KeyConditionExpression="pk = :p AND sk > :s", ExpressionAttributeValues={":p": {"S": "q3"}, ":s": {"S": "0100"}}, ScanIndexForward=False, Limit=7),
            dict(IndexName="gsi", KeyConditionExpression="g = :g", ExpressionAttributeValues={":g": {"S": "G2"}}),
            dict(IndexName="gsi", KeyConditionExpression="g = :g AND h BETWEEN :a AND :b", ExpressionAttributeValues={":g": {"S": "G1"}, ":a": {"S": "03"}, ":b": {"S": "07"}}, Limit=5),
        ]
        patched_query, patched_all = _T.query, _T.all_items
        results = [c.query(TableName="t", **q) for q in queries]
        _T.query, _T.all_items = ORIGINALS["query"], ORIGINALS["all_items"]
        reference = [c.query(TableName="t", **q) for q in queries]
        _T.query, _T.all_items = patched_query, patched_all
        for got, want in zip(results, reference):
            assert got["Items"], "each query finds items"
            assert got["Items"] == want["Items"] and got.get("LastEvaluatedKey") == want.get("LastEvaluatedKey"), (got, want)

        # Cost does not grow with the table: the last 200 of 1,000 take about as long as the first 200.
        laps = []
        for i in range(1000):
            if i % 200 == 0:
                laps.append(time.time())
            c.transact_write_items(TransactItems=[put(f"p{i}", f"s{j}", "x" * 100) for j in range(4)])
        laps.append(time.time())
        first, last = laps[1] - laps[0], laps[-1] - laps[-2]
        assert last < 3 * first + 0.5, f"transactions slow down as the table grows: {first:.2f}s then {last:.2f}s"

        # Concurrent transactions all land, none fails.
        errors = []

        def writer(n):
            try:
                for i in range(50):
                    c.transact_write_items(TransactItems=[put(f"w{n}-{i}", f"s{j}", "y") for j in range(3)])
            except Exception as e:  # pragma: no cover
                errors.append(e)

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        n = sum(page["Count"] for page in c.get_paginator("scan").paginate(TableName="t", Select="COUNT"))
        assert n == 2 + 300 + 1000 * 4 + 8 * 50 * 3, n

        # A Query costs the partition, not the table: timed against moto's own on the same 5,500 items.
        q = dict(TableName="t", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "q3"}})
        t = time.time()
        for _ in range(20):
            c.query(**q)
        fast = time.time() - t
        _T.query, _T.all_items = ORIGINALS["query"], ORIGINALS["all_items"]
        t = time.time()
        for _ in range(20):
            c.query(**q)
        slow = time.time() - t
        _T.query, _T.all_items = patched_query, patched_all
        assert fast * 3 < slow, f"patched query {fast:.2f}s is not clearly faster than moto's {slow:.2f}s"
    print("moto_server.py selftest: ok (atomic rollback, flat cost, concurrent transactions, queries equal and O(partition))")


if __name__ == "__main__":
    if sys.argv[1:] == ["--selftest"]:
        selftest()
        sys.exit(0)
    apply()
    from moto.server import main

    sys.exit(main())

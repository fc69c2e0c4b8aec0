#!/usr/bin/env python3
"""Athena on this machine: the tables of a Glue database read as Athena reads them, queried with DuckDB.

    athena_local.py --endpoint http://127.0.0.1:PORT --database amzpipe_local --sql "SELECT …" [--sql …]

Prints JSON: {"tables": {name: {"files": n, "partitions": [[account, dt], …]}}, "results": [{"sql", "columns", "rows"}]}.

Each table is built from the catalog alone, as Athena builds it, never from the pipeline's own knowledge:
- its columns and partition keys from the table (StorageDescriptor.Columns, PartitionKeys);
- its partitions from partition projection (`projection.<key>.type` enum or date, `projection.dt.range` up to
  NOW), each partition's location from `storage.location.template`; every object under that location is read,
  except those whose name starts with `_` or `.` (Hive's hidden files, as Athena skips them: the manifests);
  a `SymlinkTextInputFormat` table's objects are its partitions' symlink files, each line an `s3://` path of
  an object to read (as Hive and Athena read symlink tables);
- its views (`VIRTUAL_VIEW`) from Trino's view format, `/* Presto View: <base64 JSON> */`, whose `originalSql`
  is run as written (the SQL the pipeline writes is both Trino's and DuckDB's), and whose declared columns
  must be what that query returns, by name and type, or the view is refused as stale, as Athena refuses it;
- each object as its SerDe reads it: LazySimpleSerDe (`field.delim`, no quoting), OpenCSVSerde (`separatorChar`,
  `quoteChar`) by position, `skip.header.line.count` lines skipped per file, a `.gz` object inflated (as Athena
  does, by its extension); the OpenX JSON SerDe by name
  (case-insensitive, `mapping.<column>` honoured), one object per line; ParquetHiveSerDe by column name, a column a
  file lacks read as null. Every column has the type the catalog declares (text formats: all strings);
- Athena's `"$path"` pseudo-column, the `s3://` path of the object a row was read from (unlike Athena's, it is
  also in `SELECT *`).
"""

import argparse
import base64
import datetime
import gzip
import json
import os
import sys
import tempfile

import boto3
import duckdb


def client(service, endpoint, region):
    return boto3.client(
        service, endpoint_url=endpoint, region_name=region, aws_access_key_id="test", aws_secret_access_key="test"
    )


def days(spec, fmt):
    start, end = spec.split(",")
    if fmt != "yyyy-MM-dd":
        raise SystemExit(f"unsupported projection date format {fmt}")
    parse = lambda s: datetime.date.today() if s.strip() == "NOW" else datetime.date.fromisoformat(s.strip())
    day, last = parse(start), parse(end)
    while day <= last:
        yield day.isoformat()
        day += datetime.timedelta(days=1)


def partitions(table):
    params = table.get("Parameters", {})
    keys = [k["Name"] for k in table.get("PartitionKeys", [])]
    if params.get("projection.enabled") != "true":
        raise SystemExit(f"table {table['Name']}: no partition projection")
    values = []
    for key in keys:
        kind = params.get(f"projection.{key}.type")
        if kind == "enum":
            values.append([v for v in params[f"projection.{key}.values"].split(",") if v])
        elif kind == "date":
            values.append(list(days(params[f"projection.{key}.range"], params.get(f"projection.{key}.format"))))
        else:
            raise SystemExit(f"table {table['Name']}: unsupported projection type {kind!r} for {key}")
    combos = [[]]
    for vs in values:
        combos = [c + [v] for c in combos for v in vs]
    template = params["storage.location.template"]
    for combo in combos:
        location = template
        for key, value in zip(keys, combo):
            location = location.replace("${" + key + "}", value)
        yield keys, combo, location


def objects(s3, location):
    bucket, _, prefix = location[len("s3://"):].partition("/")
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            name = o["Key"].rsplit("/", 1)[-1]
            if not name.startswith(("_", ".")):
                yield bucket, o["Key"]


SYMLINK_INPUT = "org.apache.hadoop.hive.ql.io.SymlinkTextInputFormat"


def targets(s3, location, symlinks):
    """The objects a partition reads: those under its location, or those its symlink files list."""
    for bucket, key in objects(s3, location):
        if not symlinks:
            yield bucket, key
            continue
        listing = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
        for line in listing.splitlines():
            if line.strip():
                target_bucket, _, target_key = line.strip()[len("s3://"):].partition("/")
                yield target_bucket, target_key


def quote(text):
    return "'" + text.replace("'", "''") + "'"


def ident(text):
    return '"' + text.replace('"', '""') + '"'


DUCKDB_TYPES = {"string": "VARCHAR", "bigint": "BIGINT", "double": "DOUBLE", "date": "DATE", "timestamp": "TIMESTAMP"}


def reader(db, table, path):
    """A DuckDB SELECT of one file as the table's SerDe reads it."""
    sd = table["StorageDescriptor"]
    serde = sd["SerdeInfo"]
    lib = serde["SerializationLibrary"]
    if lib == "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe":
        present = {row[0] for row in db.execute(f"DESCRIBE SELECT * FROM read_parquet({quote(path)})").fetchall()}
        select = []
        for c in sd["Columns"]:
            kind = DUCKDB_TYPES.get(c.get("Type", "string"), "VARCHAR")
            select.append(f"CAST({ident(c['Name'])} AS {kind}) AS {ident(c['Name'])}" if c["Name"] in present else f"NULL::{kind} AS {ident(c['Name'])}")
        return f"SELECT {', '.join(select)} FROM read_parquet({quote(path)})"
    sparams = serde.get("Parameters", {})
    columns = [c["Name"] for c in sd["Columns"]]
    skip = int(table.get("Parameters", {}).get("skip.header.line.count", "0"))
    if lib.endswith("LazySimpleSerDe") or lib.endswith("OpenCSVSerde"):
        if lib.endswith("LazySimpleSerDe"):
            delim, quote_char = sparams.get("field.delim", "\x01"), ""
        else:
            delim, quote_char = sparams.get("separatorChar", ","), sparams.get("quoteChar", '"')
        types = "{" + ", ".join(f"{quote(c)}: 'VARCHAR'" for c in columns) + "}"
        return (
            f"SELECT * FROM read_csv({quote(path)}, delim={quote(delim)}, quote={quote(quote_char)}, "
            f"escape={quote(quote_char)}, header=false, skip={skip}, columns={types}, auto_detect=false, "
            f"null_padding=true, strict_mode=false, all_varchar=true)"
        )
    if lib == "org.openx.data.jsonserde.JsonSerDe":
        keys = {c: sparams.get(f"mapping.{c}", c) for c in columns}
        lowered = {}
        with (gzip.open(path, "rt", encoding="utf-8") if path.endswith(".gz") else open(path, encoding="utf-8")) as f:
            for line in f:
                if line.strip():
                    for k in json.loads(line):
                        lowered.setdefault(k.lower(), k)
        select = []
        for c in columns:
            key = lowered.get(keys[c].lower())
            select.append(f"CAST(json_extract_string(j, {quote('$.' + ident(key))}) AS VARCHAR) AS {ident(c)}" if key else f"NULL::VARCHAR AS {ident(c)}")
        return (
            f"SELECT {', '.join(select)} FROM (SELECT json AS j FROM read_json_objects({quote(path)}, "
            f"format='newline_delimited'))"
        )
    raise SystemExit(f"table {table['Name']}: unsupported SerDe {lib}")


# The Trino type a view declares for a column, as DuckDB names the type of what its query returns.
VIEW_TYPES = {"varchar": "VARCHAR", "bigint": "BIGINT", "double": "DOUBLE", "date": "DATE", "timestamp(3)": "TIMESTAMP"}


def check_view_types(db, name, declared):
    """Athena (Trino) refuses a view whose query returns columns other than those its definition
    declares, by name or by type ("View … is stale or in invalid state"); DuckDB checks neither, so
    this does: each declared column against what the view's query returns, in order."""
    returned = [(row[0], row[1]) for row in db.execute(f"DESCRIBE {ident(name)}").fetchall()]
    wanted = [(c["name"], VIEW_TYPES.get(c["type"], c["type"])) for c in declared]
    if returned != wanted:
        raise SystemExit(
            f"view {name} is stale, as Athena would say: it declares {wanted} and its query returns {returned}"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--database", required=True)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--sql", action="append", default=[])
    args = parser.parse_args()
    glue, s3 = client("glue", args.endpoint, args.region), client("s3", args.endpoint, args.region)
    db = duckdb.connect()
    summary = {}
    with tempfile.TemporaryDirectory() as scratch:
        tables = glue.get_paginator("get_tables").paginate(DatabaseName=args.database)
        views = []
        for table in [t for page in tables for t in page["TableList"]]:
            if table.get("TableType") == "VIRTUAL_VIEW":
                views.append(table)
                continue
            columns = [c["Name"] for c in table["StorageDescriptor"]["Columns"]]
            symlinks = table["StorageDescriptor"].get("InputFormat") == SYMLINK_INPUT
            selects, seen = [], []
            for keys, values, location in partitions(table):
                found = False
                for bucket, key in targets(s3, location, symlinks):
                    # Athena inflates a `.gz` object by its extension; so does DuckDB.
                    gz = ".gz" if key.endswith(".gz") else ""
                    path = os.path.join(scratch, f"{len(os.listdir(scratch)):06d}{gz}")
                    s3.download_file(bucket, key, path)
                    parts = ", ".join(f"{quote(v)} AS {ident(k)}" for k, v in zip(keys, values))
                    # Athena's `$path` pseudo-column: the data object a row was read from (a symlink
                    # table's: the object the symlink names).
                    source = quote(f"s3://{bucket}/{key}")
                    selects.append(f'SELECT *, {parts}, {source} AS "$path" FROM ({reader(db, table, path)})')
                    found = True
                if found:
                    seen.append(values)
            if not selects:
                cols = ", ".join(
                    f"NULL::VARCHAR AS {ident(c)}" for c in columns + [k["Name"] for k in table["PartitionKeys"]] + ["$path"]
                )
                selects = [f"SELECT {cols} WHERE false"]
            db.execute(f"CREATE VIEW {ident(table['Name'])} AS " + " UNION ALL ".join(selects))
            summary[table["Name"]] = {"files": len(selects) if seen else 0, "partitions": seen}
        for view in views:
            text = view["ViewOriginalText"].strip()
            prefix, suffix = "/* Presto View: ", " */"
            if not (text.startswith(prefix) and text.endswith(suffix)):
                raise SystemExit(f"view {view['Name']}: not in Trino's view format")
            presto = json.loads(base64.b64decode(text[len(prefix):-len(suffix)]))
            db.execute(f"CREATE VIEW {ident(view['Name'])} AS {presto['originalSql']}")
            check_view_types(db, view["Name"], presto["columns"])
            summary[view["Name"]] = {"view": presto["originalSql"]}
        results = []
        for sql in args.sql:
            cursor = db.execute(sql)
            results.append({
                "sql": sql,
                "columns": [d[0] for d in cursor.description],
                "rows": [[None if v is None else str(v) for v in row] for row in cursor.fetchall()],
            })
    json.dump({"tables": summary, "results": results}, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()

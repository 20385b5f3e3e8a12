#!/usr/bin/env python3
"""Reads the tables `h2keepalive analyze --tables` writes, with readers that owe nothing to
h2keepalive, and prints what they read as JSON for tests/tables_report.rs to check.

usage: tables_read.py PARQUET_DIR CSV_DIR [PARQUET_DIR CSV_DIR ...]

Each pair holds the same capture's tables in both formats. Parquet is read with pyarrow (required:
`python3 -m pip install pyarrow`); the CSV files with Python's csv module (header, number of rows)
and with pyarrow.csv given the Parquet file's column types, and every CSV value must equal the
Parquet one. When DuckDB or polars are installed they read both formats too and must agree on the
number of rows and on timestamps being UTC timestamps.

Output: a JSON list, one object per pair:
  {"readers": ["pyarrow 26.0.1", ...],
   "tables": {"connections": {"columns": [{"name", "type", "nullable"}], "rows": [{column: value}]},
              "events": ..., "pings": ...},
   "problems": ["..."]}
`type` is pyarrow's name for the Parquet column's type (`int64`, `double`, `timestamp[us, tz=UTC]`);
timestamps in `rows` are integer microseconds since the Unix epoch.
Exit status 3 when pyarrow is missing, 0 otherwise (problems are reported, not raised).
"""

import csv
import datetime
import json
import sys

try:
    import pyarrow
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq
except ImportError as e:
    print(f"tables_read.py: {e}: python3 -m pip install pyarrow", file=sys.stderr)
    sys.exit(3)

try:
    import duckdb
except ImportError:
    duckdb = None
try:
    import polars
except ImportError:
    polars = None

TABLES = ("connections", "events", "pings")
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
US = datetime.timedelta(microseconds=1)


def plain(value):
    """A value JSON can carry: timestamps as microseconds since the epoch."""
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            raise ValueError(f"timestamp without time zone: {value}")
        return (value - EPOCH) // US
    return value


def read_pair(parquet_dir, csv_dir):
    readers = [f"pyarrow {pyarrow.__version__}"]
    if duckdb is not None:
        readers.append(f"duckdb {duckdb.__version__}")
    if polars is not None:
        readers.append(f"polars {polars.__version__}")
    out = {"readers": readers, "tables": {}, "problems": []}
    problems = out["problems"]
    for name in TABLES:
        pq_path = f"{parquet_dir}/{name}.parquet"
        csv_path = f"{csv_dir}/{name}.csv"
        table = pq.read_table(pq_path)
        out["tables"][name] = {
            "columns": [
                {"name": f.name, "type": str(f.type), "nullable": f.nullable}
                for f in table.schema
            ],
            "rows": [{k: plain(v) for k, v in row.items()} for row in table.to_pylist()],
        }

        # CSV with the standard library: the same header and number of rows.
        with open(csv_path, newline="", encoding="utf-8") as f:
            lines = list(csv.reader(f))
        if not lines or lines[0] != table.column_names:
            problems.append(f"{name}.csv: header {lines[:1]} is not {table.column_names}")
        if len(lines) - 1 != table.num_rows:
            problems.append(
                f"{name}.csv: {len(lines) - 1} rows, {name}.parquet {table.num_rows}"
            )

        # CSV with pyarrow, converted to the Parquet file's types: every value the same. Only an
        # empty unquoted field is null; "" is an empty string.
        from_csv = pa_csv.read_csv(
            csv_path,
            convert_options=pa_csv.ConvertOptions(
                column_types={f.name: f.type for f in table.schema},
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
            ),
        )
        if from_csv.column_names != table.column_names:
            problems.append(f"{name}.csv: pyarrow.csv reads columns {from_csv.column_names}")
        else:
            for column in table.column_names:
                a = table.column(column).to_pylist()
                b = from_csv.column(column).to_pylist()
                if a != b:
                    row = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), len(a))
                    problems.append(
                        f"{name}.csv: column {column} differs from the Parquet file at row {row}: "
                        f"{b[row] if row < len(b) else None!r} vs {a[row] if row < len(a) else None!r}"
                    )

        if duckdb is not None:
            con = duckdb.connect()
            for path, reader in ((pq_path, "read_parquet"), (csv_path, "read_csv")):
                rows = con.execute(f"SELECT count(*) FROM {reader}(?)", [path]).fetchone()[0]
                if rows != table.num_rows:
                    problems.append(f"duckdb: {path}: {rows} rows, pyarrow {table.num_rows}")
                types = dict(
                    (r[0], r[1])
                    for r in con.execute(f"DESCRIBE SELECT * FROM {reader}(?)", [path]).fetchall()
                )
                for f in table.schema:
                    # A CSV column with no value at all gives the sniffer nothing to go by.
                    known = reader == "read_parquet" or table.column(f.name).null_count < table.num_rows
                    if pyarrow.types.is_timestamp(f.type) and known:
                        if types.get(f.name) != "TIMESTAMP WITH TIME ZONE":
                            problems.append(
                                f"duckdb: {path}: {f.name} is {types.get(f.name)}, "
                                "not TIMESTAMP WITH TIME ZONE"
                            )
            con.close()

        if polars is not None:
            for frame, path in (
                (polars.read_parquet(pq_path), pq_path),
                (polars.read_csv(csv_path, try_parse_dates=True), csv_path),
            ):
                if frame.height != table.num_rows:
                    problems.append(f"polars: {path}: {frame.height} rows, pyarrow {table.num_rows}")
                for f in table.schema:
                    if pyarrow.types.is_timestamp(f.type) and frame[f.name].null_count() < frame.height:
                        dtype = frame.schema[f.name]
                        if getattr(dtype, "time_zone", None) != "UTC":
                            problems.append(f"polars: {path}: {f.name} is {dtype}, not UTC")
    return out


def main(args):
    if not args or len(args) % 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    pairs = list(zip(args[0::2], args[1::2]))
    json.dump([read_pair(p, c) for p, c in pairs], sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

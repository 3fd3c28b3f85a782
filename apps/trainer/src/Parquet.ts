/**
 * Parquet splits as Hugging Face `datasets` writes them (ViRL39K, MMK12: an `images` column of
 * `{bytes, path}` structs, `problem`, `answer`), read with `hyparquet` (pure JS) and its compressors
 * (snappy, gzip, zstd, brotli, lz4). The file is read one row group at a time, so a large file is never
 * held whole: only the wanted columns of the current row group are in memory.
 *
 * @since 0.1.0
 */
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, parquetSchema } from "hyparquet"
import { compressors } from "hyparquet-compressors"

/**
 * One row: its index in the file (0-based, as `datasets` numbers rows) and its cells by column name.
 * Binary cells are `Uint8Array`, strings are strings, structs are objects, lists are arrays.
 *
 * @category models
 */
export interface Row {
  readonly row: number
  readonly record: Readonly<Record<string, unknown>>
}

/**
 * The rows of a Parquet file, row group by row group; `columns` limits the columns read (all when
 * omitted; a name the file lacks is simply absent from the records). Rejects on a file that is not
 * Parquet or is corrupt.
 *
 * @example
 * for await (const { row, record } of readRows("train.parquet", ["images", "problem", "answer"])) {
 *   record["problem"] // => "<image>What colour is the largest shape?"
 * }
 *
 * @category constructors
 */
export async function* readRows(file: string, columns?: ReadonlyArray<string>): AsyncGenerator<Row> {
  const buffer = await asyncBufferFromFile(file)
  const metadata = await parquetMetadataAsync(buffer)
  const present = new Set(parquetSchema(metadata).children.map((c) => c.element.name))
  const wanted = columns?.filter((c) => present.has(c))
  let start = 0
  for (const group of metadata.row_groups) {
    const end = start + Number(group.num_rows)
    const records = await parquetReadObjects({
      file: buffer,
      metadata,
      rowStart: start,
      rowEnd: end,
      compressors,
      // Binary columns (image bytes) stay bytes; STRING columns are still decoded.
      utf8: false,
      ...(wanted ? { columns: [...wanted] } : {})
    })
    for (let i = 0; i < records.length; i++) yield { row: start + i, record: records[i]! }
    start = end
  }
}

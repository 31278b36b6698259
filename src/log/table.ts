/** Plain-text tables with aligned columns (the last column is not padded). */
export function formatTable(
  header: readonly string[] | undefined,
  rows: readonly (readonly string[])[],
): string {
  const all = header ? [header, ...rows] : rows;
  if (all.length === 0) return '';
  const cols = Math.max(...all.map((r) => r.length));
  const widths = Array.from({ length: cols }, (_, c) => Math.max(...all.map((r) => (r[c] ?? '').length)));
  return all
    .map((r) =>
      r
        .map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .map((l) => `${l}\n`)
    .join('');
}

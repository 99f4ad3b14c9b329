/**
 * CSV (RFC 4180) for spreadsheets: a cell with a comma, a quote or a line break is quoted (its
 * quotes doubled), and a text cell a spreadsheet would read as a formula (one starting with
 * `=`, `+`, `-`, `@`, a tab or a carriage return: OWASP's "CSV injection") gets a leading `'`,
 * so it is shown as text and never evaluated. Numbers are written as they are.
 */

const FORMULA_START = /^[=+\-@\t\r]/;

export function csvCell(value: string | number | null): string {
  if (value === null) return '';
  if (typeof value === 'number') return String(value);
  const text = FORMULA_START.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** One record, CRLF-terminated as RFC 4180 says. */
export const csvLine = (cells: readonly (string | number | null)[]): string => `${cells.map(csvCell).join(',')}\r\n`;

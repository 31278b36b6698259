/** A VM's serial console as text for error messages: colour and cursor sequences removed. */

/** ANSI colour and cursor sequences, which systemd writes to the serial console. */
const ANSI_ESCAPE = new RegExp(`${String.fromCharCode(27)}\\[[0-9;?]*[A-Za-z]`, 'g');

/** The last `n` non-empty lines of a console log's text, without escape sequences. */
export function consoleTailLines(text: string, n: number): string[] {
  return text
    .replace(ANSI_ESCAPE, '')
    .split(/\r?\n/)
    .filter((l) => l.trim())
    .slice(-n);
}

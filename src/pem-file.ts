import { readFileSync } from 'node:fs';

/**
 * The text of a PEM file (certificate, key or CA bundle). Throws an Error whose message says
 * what is wrong in the project's words: `cannot read "F": no such file`, `"F" is not a PEM file`.
 * Callers wrap it in the error type that names their config field.
 */
export function readPemFile(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : (code ?? (err as Error).message);
    throw new Error(`cannot read "${file}": ${why}`, { cause: err });
  }
  if (!text.includes('-----BEGIN ')) throw new Error(`"${file}" is not a PEM file (no "-----BEGIN" line)`);
  return text;
}

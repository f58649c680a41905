// Help and README text generated from field declarations, so docs cannot drift from
// validation.
import { formatDuration } from './duration';
import type { Field, Schema } from './fields';

/** A default as the docs show it: durations as "10s", strings as they are, others as JSON. */
export function describeDefault(f: Field): string | undefined {
  if (f.default === undefined) return undefined;
  if (f.type === 'duration' && typeof f.default === 'number') return formatDuration(f.default, f.unit ?? 's');
  return typeof f.default === 'string' ? f.default : JSON.stringify(f.default);
}

/** `vault path-help`'s PARAMETERS section. */
export function fieldHelp(fields: Schema): string {
  return Object.entries(fields)
    .map(
      ([k, f]) =>
        `    ${k} (${f.type}${f.default !== undefined ? `, default: ${JSON.stringify(f.default)}` : ''}${f.required ? ', required' : ''})\n        ${f.description}${f.allowed ? ` One of: ${f.allowed.join(', ')}.` : ''}`,
    )
    .join('\n\n');
}

const cell = (s: string) => s.replace(/\|/g, '\\|');

/** A Markdown table of the fields: name, type (or allowed values), default, meaning. */
export function fieldTable(fields: Schema): string {
  const rows = Object.entries(fields).map(([k, f]) => {
    const type = f.type === 'string' && f.allowed ? f.allowed.join(' \\| ') : f.type;
    const def = describeDefault(f);
    const notes = `${f.required ? ' (required)' : ''}${f.secret ? ' (secret: never logged)' : ''}`;
    return `| \`${k}\` | ${type} | ${def === undefined ? '' : `\`${cell(def)}\``} | ${cell(f.description)}${notes} |`;
  });
  return ['| field | type | default | meaning |', '|---|---|---|---|', ...rows].join('\n');
}

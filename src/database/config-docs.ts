// The README's table of connection fields, generated from CONFIG_FIELDS so the docs
// and the validation cannot disagree (test/unit/docs.test.ts checks the README).
import { CONFIG_FIELDS, type FieldSpec } from './config';

export function configTable(): string {
  const rows = Object.entries(CONFIG_FIELDS as Record<string, FieldSpec>).map(([k, f]) => {
    const type = f.type === 'enum' ? f.values!.join(' \\| ') : f.type;
    return `| \`${k}\` | ${type} | ${f.description.replace(/\|/g, '\\|')}${f.secret ? ' (secret: never logged)' : ''} |`;
  });
  return ['| field | type | meaning |', '|---|---|---|', ...rows].join('\n');
}

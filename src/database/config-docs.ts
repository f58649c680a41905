// The README's table of connection fields, generated from CONFIG_FIELDS so the docs
// and the validation cannot disagree (test/unit/docs.test.ts checks the README).
import { fieldTable } from '../schema';
import { CONFIG_FIELDS } from './config';

/** The README's table of connection fields, generated from CONFIG_FIELDS. */
export function configTable(): string {
  return fieldTable(CONFIG_FIELDS);
}

import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { configTable } from '../../src/database/config-docs';

describe('README', () => {
  it('lists the connection fields exactly as the schema defines them', () => {
    const readme = fs.readFileSync(path.resolve(__dirname, '../../README.md'), 'utf8');
    const m = /<!-- config-fields:begin -->\n([\s\S]*?)\n<!-- config-fields:end -->/.exec(readme);
    expect(m, 'README has the config-fields markers').not.toBeNull();
    expect(m![1].trim()).toBe(configTable());
  });
});

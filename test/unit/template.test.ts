import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { DEFAULT_USERNAME_TEMPLATE, UsernameTemplate } from '../../src/database/template';

const data = { DisplayName: 'token-alice-in-wonderland', RoleName: 'readonly-analytics' };
const render = (t: string) => UsernameTemplate.parse(t).render(data);

describe('username templates', () => {
  it("default template has Vault's shape and stays within 63 bytes", () => {
    const u = render(DEFAULT_USERNAME_TEMPLATE);
    expect(u).toMatch(/^v-token-al-readonly-[A-Za-z0-9]{20}-\d{10}$/);
    expect(Buffer.byteLength(u)).toBeLessThanOrEqual(63);
  });
  it('random is fresh each render', () => {
    const t = UsernameTemplate.parse('{{random 20}}');
    expect(t.render(data)).not.toBe(t.render(data));
  });
  it("implements Vault's functions", () => {
    expect(render('{{.RoleName | uppercase}}')).toBe('READONLY-ANALYTICS');
    expect(render('{{ "ABC" | lowercase }}')).toBe('abc');
    expect(render('{{.RoleName | replace "-" "_"}}')).toBe('readonly_analytics');
    expect(render('{{.DisplayName | truncate 5}}')).toBe('token');
    expect(render('{{ "abc" | sha256 }}')).toBe(createHash('sha256').update('abc').digest('hex'));
    expect(render('{{ "abc" | base64 }}')).toBe('YWJj');
    expect(render('{{uuid}}')).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const now = Math.floor(Date.now() / 1000);
    expect(Math.abs(Number(render('{{unix_time}}')) - now)).toBeLessThan(3);
    expect(Math.abs(Number(render('{{unix_time_millis}}')) - Date.now())).toBeLessThan(3000);
    expect(render('{{timestamp "2006-01-02"}}')).toBe(new Date().toISOString().slice(0, 10));
    expect(render('{{printf "%s-%d-%%" .RoleName 7}}')).toBe('readonly-analytics-7-%');
  });
  it('truncate_sha256 keeps a hash suffix so truncated names stay distinct', () => {
    const out = render('{{.DisplayName | truncate_sha256 12}}');
    expect(out).toHaveLength(12);
    expect(out.startsWith('toke')).toBe(true);
    expect(render('{{ "short" | truncate_sha256 12 }}')).toBe('short');
  });
  it('truncate cuts UTF-8 on character boundaries', () => {
    const out = UsernameTemplate.parse('{{.DisplayName | truncate 5}}').render({ DisplayName: 'ééé', RoleName: '' });
    expect(out).toBe('éé');
  });
  it('supports trim markers, parentheses and raw strings', () => {
    expect(render('a {{- (printf `%s` .RoleName) | truncate 4 -}} b')).toBe('areadb');
  });
  it.each([
    ['{{ .Password }}', /unknown field/],
    ['{{ exec "rm" }}', /unknown function/],
    ['{{ random }}', /takes 1/],
    ['{{ random 99999 }}', /over 1024/],
    ['{{ truncate "x" .RoleName }}', /non-negative integer/],
    ['{{ .RoleName', /unterminated/],
    ['{{ "abc }}', /unterminated string/],
    ['{{ truncate_sha256 4 .RoleName }}', /over 8/],
    ['{{ }}', /empty/],
  ])('rejects %s with a clear message', (tpl, msg) => {
    expect(() => UsernameTemplate.parse(tpl)).toThrow(msg);
  });
});

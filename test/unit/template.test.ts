import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { DEFAULT_USERNAME_TEMPLATE, TemplateError, UsernameTemplate } from '../../src/database/template';
import { ErrorCode, type PluginError } from '../../src/database/errors';
import { parseConfig } from '../../src/database/config';

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

describe('Go template actions (review item 9)', () => {
  const r = (t: string, d = data) => UsernameTemplate.parse(t).render(d);
  it('comments are dropped, with trim markers too', () => {
    expect(r('a{{/* a comment */}}b')).toBe('ab');
    expect(r('a {{- /* x\ny */ -}} b')).toBe('ab');
    expect(() => UsernameTemplate.parse('{{/* x */ .RoleName}}')).toThrow(/comment must end/);
    expect(() => UsernameTemplate.parse('{{/* x }}')).toThrow(/unclosed comment/);
  });
  it('print and println as fmt.Sprint/Sprintln; len counts bytes; slice and index by bytes', () => {
    expect(r('{{print "a" 1 2 "b" true false}}')).toBe('a1 2btrue false');
    expect(r('{{println "a" 1}}')).toBe('a 1\n');
    expect(r('{{len .RoleName}}-{{len "é"}}')).toBe('18-2');
    expect(r('{{slice .RoleName 0 4}}|{{slice .RoleName 9}}|{{slice .RoleName 2 3}}')).toBe('read|analytics|a');
    expect(r('{{index "abc" 1}}')).toBe('98');
    expect(() => r('{{slice "é" 0 1}}')).toThrow(/cut a character/);
    expect(() => r('{{slice .RoleName 5 99}}')).toThrow(/out of range/);
  });
  it('variables: := declares, = assigns, $ is the data; scoped to {{end}}', () => {
    expect(r('{{ $r := random 4 }}{{$r}}-{{$r}}')).toMatch(/^([A-Za-z0-9]{4})-\1$/);
    expect(r('{{$x := "a"}}{{$x = printf "%s%s" $x "b"}}{{$x}}{{$.RoleName | truncate 4}}')).toBe('abread');
    expect(() => UsernameTemplate.parse('{{if true}}{{$y := 1}}{{end}}{{$y}}')).toThrow(/undefined variable "\$y"/);
    expect(() => UsernameTemplate.parse('{{$z = 1}}')).toThrow(/undefined variable/);
  });
  it('if / else if / else and with, with Go truth and comparisons', () => {
    const t = '{{if eq .RoleName "admin"}}adm{{else if gt (len .RoleName) 10}}long-{{.RoleName | truncate 4}}{{else}}{{.RoleName}}{{end}}';
    expect(r(t, { DisplayName: 'd', RoleName: 'admin' })).toBe('adm');
    expect(r(t)).toBe('long-read');
    expect(r(t, { DisplayName: 'd', RoleName: 'ops' })).toBe('ops');
    expect(r('{{with .DisplayName}}{{. | truncate 5}}{{else}}none{{end}}')).toBe('token');
    expect(r('{{with .DisplayName}}x{{else}}{{.RoleName}}{{end}}', { DisplayName: '', RoleName: 'rr' })).toBe('rr');
    expect(r('{{with $n := .RoleName}}{{$n | truncate 2}}{{end}}')).toBe('re');
    expect(r('{{if and .DisplayName (not (eq .RoleName ""))}}y{{end}}{{if or "" 0}}n{{end}}')).toBe('y');
    expect(r('{{if lt 1 2}}{{if ge "b" "a"}}ok{{end}}{{end}}')).toBe('ok');
  });
  it.each([
    ['{{if .RoleName}}x', /needs \{\{end\}\}/],
    ['{{end}}', /unexpected \{\{end\}\}/],
    ['{{range .RoleName}}{{end}}', /"range" is not supported/],
    ['{{if lt 1 "a"}}{{end}}', /cannot compare/],
    ['{{with .RoleName}}{{.DisplayName}}{{end}}', /fields belong to the template data/],
    ['{{ truncate true .RoleName }}', /not booleans/],
    ['{{if true}}'.repeat(5000), /nested more than 50 levels/],
    [`{{${'('.repeat(5000)}`, /nested more than 50 levels/],
  ])('refuses %s clearly', (tpl, msg) => {
    expect(() => UsernameTemplate.parse(tpl)).toThrow(msg);
  });
});

describe('templates whose values grow without bound', () => {
  const refused = (src: string) => {
    let err: unknown;
    try {
      UsernameTemplate.parse(src);
    } catch (e) {
      err = e;
    }
    return err;
  };
  it('a printf width past what a string can hold is an InvalidArgument about the template, not an internal RangeError', () => {
    for (const src of ['{{printf "%2000000000d" 1}}', '{{printf "%*s" 2000000000 "x"}}', '{{printf "%.2000000000d" 1}}']) {
      const err = refused(src);
      expect(err, src).toBeInstanceOf(TemplateError);
      expect((err as PluginError).code).toBe(ErrorCode.InvalidArgument);
      expect((err as Error).message).toMatch(/too long/);
    }
  });
  it('a value doubled over and over is refused once far past any user name, before it costs the process its memory', () => {
    // 8 bytes doubled 24 times: 128 MiB, which a len would then copy out whole.
    const src = `{{$x := "aaaaaaaa"}}${'{{$x = print $x $x}}'.repeat(24)}{{len $x}}`;
    expect(refused(src)).toBeInstanceOf(TemplateError);
    expect(refused(`{{$x := "aaaaaaaa"}}${'{{$x = print $x $x}}'.repeat(40)}`)).toBeInstanceOf(TemplateError);
  });
  it('parseConfig reports such a template as invalid', () => {
    expect(() => parseConfig({ connection_url: 'postgres://u:p@h/db', username_template: '{{printf "%2000000000d" 1}}' })).toThrow(
      /username_template is invalid/,
    );
  });
});

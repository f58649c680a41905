// Go's fmt verbs and time layouts for username templates (review item 8).
import { describe, expect, it } from 'vitest';
import { goQuote, goSprintf, goTimeFormat } from '../../src/database/gofmt';
import { UsernameTemplate } from '../../src/database/template';

const render = (t: string) => UsernameTemplate.parse(t).render({ DisplayName: 'token', RoleName: 'role' });

describe('printf', () => {
  it.each([
    ['%05d', [42], '00042'],
    ['%x %X %o %b', [255, 255, 8, 5], 'ff FF 10 101'],
    ['%#x %#X %#o %O', [255, 255, 8, 8], '0xff 0XFF 010 0o10'],
    ['%+d % d %d', [5, 5, -5], '+5  5 -5'],
    ['%-6s|%6s|', ['ab', 'ab'], 'ab    |    ab|'],
    ['%.2s|%.0s|%.9s', ['abcdef', 'x', 'é€'], 'ab||é€'],
    ['%-5d|%5d|%.3d|%8.3d', [3, 3, 7, -5], '3    |    3|007|    -005'],
    ['%c%c', [65, 0x20ac], 'A€'],
    ['%q %q', ['a"b\n', 65], `"a\\"b\\n" 'A'`],
    ['%x % x %#x', ['hi', 'hi', 'hi'], '6869 68 69 0x6869'],
    ['%v %v %t %T %T', ['s', 7, true, 'x', 1], 's 7 true string int'],
    ['%U %#U', [0x1f600, 65], "U+1F600 U+0041 'A'"],
    ['%[2]s-%[1]s', ['a', 'b'], 'b-a'],
    ['%*d|%-*d|', [5, 42, 4, 1], '   42|1   |'],
    ['%06s|%%|%5.1s', ['ab', 'xyz'], '    ab|%|    x'],
  ] as const)('%s', (format, args, want) => {
    expect(goSprintf(format, args)).toBe(want);
  });

  it('a verb with flags no longer leaves later verbs with the wrong values', () => {
    expect(render('{{printf "%05d-%s-%x" 7 .RoleName 255}}')).toBe('00007-role-ff');
  });

  it.each([
    ['{{printf "%f" 1}}', /printf: %f is not supported/],
    ['{{printf "%d" .RoleName}}', /printf: %d cannot format the string "role"/],
    ['{{printf "%s-%s" .RoleName}}', /printf: %s has no argument/],
    ['{{printf "%s" .RoleName 1}}', /printf: "%s" has more arguments than verbs/],
    ['{{printf "%[3]s" .RoleName}}', /argument index \[3\] is out of range/],
    ['{{printf "abc%"}}', /incomplete verb/],
  ])('%s is a config error, not a mis-rendered name', (tpl, msg) => {
    expect(() => UsernameTemplate.parse(tpl)).toThrow(msg);
  });

  it('quotes as Go does', () => {
    expect(goQuote('a\tb\x01\u00a0é')).toBe('"a\\tb\\x01\\u00a0é"');
  });
});

describe('timestamp layouts', () => {
  const t = new Date(Date.UTC(2024, 0, 5, 13, 4, 9, 120)); // a Friday
  it.each([
    ['2006-01-02T15:04:05.999999999Z07:00', '2024-01-05T13:04:09.12Z'],
    ['05.000|05,999|05.9|05.000000', '09.120|09,12|09.1|09.120000'],
    ['Jan _2 3:04PM Monday Mon January', 'Jan  5 1:04PM Friday Fri January'],
    ['002 __2 06 1/2 -0700 -07:00 -07 Z0700 MST pm', '005   5 24 1/5 +0000 +00:00 +00 Z UTC pm'],
    ['_2006', '_2024'],
  ])('%s', (layout, want) => {
    expect(goTimeFormat(layout, t)).toBe(want);
  });
  it('nines drop trailing zeros, and the separator when nothing is left; zeros are fixed', () => {
    const whole = new Date(Date.UTC(2024, 0, 5, 13, 4, 9, 0));
    expect(goTimeFormat('05.999|05.000', whole)).toBe('09|09.000');
    expect(goTimeFormat('.999999999', whole, 123_400_000)).toBe('.1234');
  });
  it('renders in a template', () => {
    expect(render('{{timestamp "2006.999"}}')).toMatch(/^\d{4}(\.\d{1,3})?$/);
  });
});

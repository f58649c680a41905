// The user name a NewUser call creates: username_template, then what the server keeps.
import type { Dialect } from './dialects';
import { invalid } from './errors';
import type { UsernameTemplate } from './template';

const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

/** Render the template and check the name fits the server (no silent truncation, no control characters). */
export function generateUsername(template: UsernameTemplate, dialect: Dialect, names: { displayName: string; roleName: string }): string {
  const username = dialect.normalizeUsername(template.render({ DisplayName: names.displayName, RoleName: names.roleName }));
  if (!username) throw invalid('username_template produced an empty username');
  if (CONTROL_CHARS.test(username)) throw invalid('generated username contains control characters');
  const bytes = Buffer.byteLength(username);
  if (bytes > dialect.maxUsernameBytes) {
    throw invalid(
      `generated username is ${bytes} bytes; ${dialect.name} keeps at most ${dialect.maxUsernameBytes} (end username_template with "| truncate ${dialect.maxUsernameBytes}")`,
    );
  }
  return username;
}

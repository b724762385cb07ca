// The extension's settings in package.json default to exactly what contracts/defaults.ts says, setting by
// setting, and every setting there has its default here.
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { SETTING_DEFAULTS } from '../../contracts/defaults';
import { DEFAULTS_PAGE, withTable } from '../../scripts/docs/defaults-table';

interface SettingSchema {
  readonly default?: unknown;
  readonly enum?: readonly unknown[];
  readonly minimum?: number;
  readonly maximum?: number;
}

const manifest = JSON.parse(readFileSync(join(import.meta.dirname, '../../package.json'), 'utf8')) as {
  contributes: { configuration: { properties: Record<string, SettingSchema> } };
};
const properties = manifest.contributes.configuration.properties;
const PREFIX = 'fedkseed.';

test('every setting in package.json defaults to its value in contracts/defaults.ts', () => {
  for (const [name, schema] of Object.entries(properties)) {
    assert.ok(name.startsWith(PREFIX), `${name} is outside the fedkseed section`);
    const key = name.slice(PREFIX.length);
    assert.ok(key in SETTING_DEFAULTS, `${name} has no default in contracts/defaults.ts`);
    assert.deepEqual(schema.default, SETTING_DEFAULTS[key as keyof typeof SETTING_DEFAULTS], `${name}: package.json says ${JSON.stringify(schema.default)}`);
  }
});

test('every default of contracts/defaults.ts is a setting of package.json, and a valid value of it', () => {
  for (const [key, value] of Object.entries(SETTING_DEFAULTS)) {
    const schema = properties[PREFIX + key];
    assert.ok(schema, `${PREFIX}${key} is not in package.json`);
    if (schema.enum) assert.ok(schema.enum.includes(value), `${key}: ${String(value)} is not one of ${schema.enum.join(', ')}`);
    if (typeof value === 'number') {
      if (schema.minimum !== undefined) assert.ok(value >= schema.minimum, `${key} below its minimum`);
      if (schema.maximum !== undefined) assert.ok(value <= schema.maximum, `${key} above its maximum`);
    }
  }
});

test('docs/defaults.md holds the table made from contracts/defaults.ts (rewrite it with scripts/docs/defaults-table.ts --write)', () => {
  const page = readFileSync(DEFAULTS_PAGE, 'utf8');
  assert.equal(page, withTable(page), 'the defaults page is out of date');
});

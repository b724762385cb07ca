// The extension loads, activates and contributes what its manifest declares.
import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';
import { contributedCommands, ourExtension } from './helpers';

describe('extension', () => {
  it('activates and returns its API', async () => {
    const extension = ourExtension();
    const api = await extension.activate();
    assert.equal(extension.isActive, true);
    assert.equal(typeof api.onDidWebviewReady, 'function');
  });

  it('registers every command declared in package.json', async () => {
    await ourExtension().activate();
    const declared = contributedCommands().map((c) => c.command);
    assert.ok(declared.length > 0, 'package.json declares no commands');
    const registered = new Set(await vscode.commands.getCommands(true));
    const missing = declared.filter((id) => !registered.has(id));
    assert.deepEqual(missing, [], `declared but not registered: ${missing.join(', ')}`);
  });

  it('gives every declared command the FedKSeed category and a title', () => {
    for (const command of contributedCommands()) {
      assert.equal(command.category, 'FedKSeed', `${command.command} has category ${String(command.category)}`);
      assert.ok(command.title.trim().length > 0, `${command.command} has no title`);
    }
  });
});

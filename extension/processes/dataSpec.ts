// The dataset a request names, from the settings: refused with the fix offered (Select Dataset…, the
// setting) when none is set or the path is gone, before the trainer is asked to read it.
import { existsSync } from 'node:fs';
import type { DataSpec } from '../../contracts/trainer-rpc';
import type { FedKSeedSettings } from '../config';
import { openSettingAction, settingError, UserFacingError, type ErrorAction } from '../errors';

export function dataSpecOf(s: FedKSeedSettings): DataSpec {
  const selectDataset: ErrorAction = { title: 'Select Dataset…', command: 'fedkseed.selectDataset' };
  if (!s.data.path) throw new UserFacingError('No dataset: open a folder or select one (fedkseed.data.path).', [selectDataset, openSettingAction('data.path')]);
  if (!existsSync(s.data.path)) throw settingError('data.path', `dataset not found: ${s.data.path}`, [selectDataset]);
  return {
    path: s.data.path,
    include: s.data.include.length > 0 ? s.data.include : undefined,
    heldOutFraction: s.data.heldOutFraction,
    seqLen: s.training.seqLen,
  };
}

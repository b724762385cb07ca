/** A model file that cannot be used: the message always names the file and what is wrong with it. */
export class ModelError extends Error {
  constructor(
    readonly file: string,
    readonly problem: string,
  ) {
    super(`${file}: ${problem}`);
    this.name = 'ModelError';
  }
}

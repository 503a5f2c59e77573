// A YAML "billion laughs" document, shared by the fuzz tests of files and of the API.

/** A billion-laughs document: `levels` anchors, each a list of `width` aliases of the last. */
export function yamlAliasBomb(levels = 9, width = 9): string {
  const lines = [`l0: &l0 [${Array<string>(width).fill('"lol"').join(', ')}]`];
  for (let i = 1; i <= levels; i += 1)
    lines.push(
      `l${i}: &l${i} [${Array<string>(width)
        .fill(`*l${i - 1}`)
        .join(', ')}]`,
    );
  return `${lines.join('\n')}\n`;
}

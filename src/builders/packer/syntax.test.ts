import { describe, expect, it } from 'vitest';
import { parsePackerSyntaxErrors } from './packer.js';

// Packer 1.6.6's own words for a broken template (packer validate -syntax-only).
const OUT = `Error: Invalid expression

  on /w/template-check/debian12-base.pkr.hcl line 75, in source "qemu" "x":
  75: source "qemu" "x" { broken = 

Expected the start of an expression, but found an invalid expression token.

Error: Unsupported argument

  on /w/template-check/variables.pkr.hcl line 3:
   3:   typo = "x"

An argument named "typo" is not expected here.
`;

describe('packer syntax errors', () => {
  it('become file:line: summary: detail, in the image folder', () => {
    expect(parsePackerSyntaxErrors(OUT, '/w/template-check', '/p/images/debian12-base')).toEqual([
      '/p/images/debian12-base/debian12-base.pkr.hcl:75: Invalid expression: Expected the start of an expression, but found an invalid expression token.',
      '/p/images/debian12-base/variables.pkr.hcl:3: Unsupported argument: An argument named "typo" is not expected here.',
    ]);
  });

  it('keep the first Error line when the shape is unknown', () => {
    expect(parsePackerSyntaxErrors('Error: something new\nmore', '/w/t', '/p/i')).toEqual([
      'Error: something new',
    ]);
  });
});

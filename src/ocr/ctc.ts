/** The recogniser's classes: blank first, then the dictionary, then a space (PaddleOCR's convention). */
export function charset(dictionary: string, useSpaceChar: boolean): string[] {
  const chars = dictionary.split('\n').map((line) => line.replace(/\r$/, ''));
  if (chars.length > 0 && chars[chars.length - 1] === '') chars.pop();
  return ['', ...chars, ...(useSpaceChar ? [' '] : [])];
}

/**
 * Greedy CTC decoding of one sequence of `steps` × `classes` probabilities: best class per
 * step, repeats collapsed, blanks dropped; the score is the mean probability of the kept steps.
 */
export function ctcDecode(
  probs: Float32Array,
  offset: number,
  steps: number,
  classes: number,
  chars: readonly string[],
): { text: string; score: number } {
  let text = '';
  let sum = 0;
  let kept = 0;
  let previous = -1;
  for (let t = 0; t < steps; t++) {
    const row = offset + t * classes;
    let best = 0;
    let bestP = probs[row]!;
    for (let k = 1; k < classes; k++) {
      const p = probs[row + k]!;
      if (p > bestP) {
        bestP = p;
        best = k;
      }
    }
    if (best !== 0 && best !== previous) {
      text += chars[best] ?? '';
      sum += bestP;
      kept++;
    }
    previous = best;
  }
  return { text, score: kept === 0 ? 0 : sum / kept };
}

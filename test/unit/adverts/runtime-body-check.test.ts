import { describe, expect, it } from 'vitest';
import { advertBodyProblem } from '../../../node/runtime/node.js';
import { encodeAdvertBody } from '../../../node/adverts/advert.js';
import { sampleBody } from '../../helpers/adverts.js';

describe('the runtime gossip body check for adverts', () => {
  it('passes a valid body and names the field of a bad one', () => {
    const body = sampleBody();
    expect(advertBodyProblem(JSON.parse(JSON.stringify(encodeAdvertBody(body))) as unknown)).toBeNull();
    expect(advertBodyProblem({ ...body, inFlight: -1 })).toMatch(/inFlight/);
    expect(advertBodyProblem({ ...body, extra: 1 })).toMatch(/extra/);
    expect(advertBodyProblem('garbage')).not.toBeNull();
  });
});

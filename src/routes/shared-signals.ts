/**
 * `POST /auth/ssf/events/:transmitter`: the push endpoint (RFC 8935) of a Shared Signals
 * transmitter configured in SHARED_SIGNALS (README "Shared Signals (CAEP)"). The body is one
 * Security Event Token, `Content-Type: application/secevent+jwt`; answered 202 with an empty
 * body once it is verified and acted on (ending nothing is fine), 400 with RFC 8935 §2.3's
 * `err` and `description` (beside our `error` and `error_description`) when it is refused, 401
 * when the transmitter's configured bearer secret is missing or wrong; never cached. An unknown
 * transmitter, or none configured: 404; a mistake in SHARED_SIGNALS: 500 `configuration_error`.
 */
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { timingSafeEqual } from 'hono/utils/buffer';
import { acceptSecurityEvent, refuseSecurityEvent } from '../auth/shared-signals';
import { transmittersOf } from '../config/shared-signals';
import type { AppEnv } from '../env';
import { bodyText } from '../http/body';
import { ApiError } from '../http/errors';
import { configFailure } from '../middleware/configure';
import { checkRateLimit } from '../middleware/rate-limit';

/** One SET and room to spare. */
const MAX_BODY_BYTES = 16 * 1024; // MAX_SET_CHARS is 8192

export const sharedSignalsRoutes = new Hono<AppEnv>().post(
  '/ssf/events/:transmitter',
  bodyLimit({
    maxSize: MAX_BODY_BYTES,
    onError: async (c) => {
      await checkRateLimit(c, 'oauth');
      throw new ApiError('payload_too_large', 'The request body is too large (16 KiB at most).');
    },
  }),
  async (c) => {
    // Every refusal (4xx) counts against the client's `oauth` limit, before anything is recorded;
    // a SET the transmitter signed always passes, so nobody sharing its address holds it back.
    const countRefusal = () => checkRateLimit(c, 'oauth');
    const id = c.req.param('transmitter');
    const configured = transmittersOf(c.get('config'));
    // A mistake in SHARED_SIGNALS refuses every push, as a bad setting refuses every request.
    if (!configured.ok) return configFailure(configured.error, c.req.raw);
    const transmitter = configured.transmitters.find((t) => t.id === id);
    if (transmitter === undefined) {
      await countRefusal();
      throw new ApiError('not_found', 'No Shared Signals transmitter is configured under this name.');
    }
    if (transmitter.authorization !== null) {
      const presented = /^Bearer +(\S+) *$/i.exec(c.req.header('authorization') ?? '')?.[1] ?? '';
      // hono compares digests of both: no early exit on the first differing character, nor on length.
      if (!(await timingSafeEqual(presented, transmitter.authorization))) return refuseSecurityEvent(c, transmitter, countRefusal, 'bad_authorization', presented === '' ? 'no bearer secret' : 'wrong bearer secret');
    }
    const type = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/secevent+jwt') {
      await countRefusal();
      const description = 'Send the security event token as application/secevent+jwt.';
      throw new ApiError('unsupported_media_type', description, { fields: { err: 'invalid_request', description } });
    }
    const token = (await bodyText(c)).trim();
    if (token === '') return refuseSecurityEvent(c, transmitter, countRefusal, 'no_token', 'empty body');
    // Its length is bounded (and a refusal audited) where it is verified: MAX_SET_CHARS.
    await acceptSecurityEvent(c, transmitter, token, countRefusal);
    c.header('cache-control', 'no-store');
    return c.body(null, 202);
  },
);

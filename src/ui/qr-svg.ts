/**
 * A QR code as inline SVG, rendered here (uqr): the secret never goes to a third-party
 * service. uqr is loaded on first use only: just the enrolment page needs it.
 */
export async function qrSvg(text: string): Promise<string> {
  const { renderSVG } = await import('uqr');
  // Medium error correction, a quiet zone of four modules (what scanners expect), always dark on light.
  return renderSVG(text, { ecc: 'M', border: 4, pixelSize: 8, whiteColor: '#ffffff', blackColor: '#000000' });
}

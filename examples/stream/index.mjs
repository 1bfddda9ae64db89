// A streaming response: lines are sent as they are produced, not buffered.
export default {
  async fetch(request) {
    const count = Math.min(Number(new URL(request.url).searchParams.get('n') ?? '5'), 100);
    const encoder = new TextEncoder();
    let i = 0;
    const body = new ReadableStream({
      async pull(controller) {
        if (i >= count) {
          controller.close();
          return;
        }
        i += 1;
        await new Promise((resolve) => setTimeout(resolve, 100));
        controller.enqueue(encoder.encode(`line ${i} of ${count}\n`));
      },
    });
    return new Response(body, { headers: { 'content-type': 'text/plain; charset=utf-8' } });
  },
};

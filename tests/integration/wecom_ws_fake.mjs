// A local stand-in for WeCom's long-connection server (智能机器人 长连接), speaking the protocol as
// Tencent's own client shows it (@wecom/aibot-node-sdk 1.0.7, dist/index.esm.js: WsCmd,
// WsConnectionManager.handleFrame): JSON text frames {cmd, headers: {req_id}, body}; acks
// {headers: {req_id}, errcode, errmsg} without cmd. wecom_ws.test.mjs proves it against that SDK
// before it tests bangfu with it.
//
// Driven by the test: push frames to the subscribed connection, record every frame received,
// drop the connection, stop acking pings, send disconnected_event, choose aibot_send_msg's errcode.
import { WebSocketServer } from 'ws';
import { randomBytes } from 'node:crypto';

export const WRONG_SECRET_ERRCODE = 40001;  // what the fake answers a bad secret with

export class FakeWecomWs {
  constructor({ botId, secret }) {
    this.botId = botId;
    this.secret = secret;
    this.frames = [];        // every frame received: { conn, frame, at }
    this.connections = 0;    // connections accepted so far
    this.subscribes = 0;     // successful subscribes
    this.ackPings = true;
    this.sendErrcode = 0;    // the errcode aibot_send_msg is acked with
    this.ackSends = true;    // false: aibot_send_msg gets no ack at all
    this.current = null;     // the subscribed socket
    this.waiters = [];
    this.uploads = new Map();  // upload_id → {type, filename, total_size, total_chunks, md5, chunks}
    this.media = new Map();    // media_id → the uploaded bytes
  }

  async start() {
    this.wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise((resolve) => this.wss.once('listening', resolve));
    this.url = `ws://127.0.0.1:${this.wss.address().port}`;
    this.wss.on('connection', (ws) => {
      const conn = ++this.connections;
      ws.on('message', (data) => {
        let frame;
        try { frame = JSON.parse(data.toString()); } catch { frame = { unparsable: data.toString() }; }
        this.frames.push({ conn, frame, at: Date.now() });
        this.answer(ws, frame);
        this.wake();
      });
      ws.on('close', () => { if (this.current === ws) this.current = null; this.wake(); });
    });
    return this;
  }

  answer(ws, frame) {
    const reqId = frame.headers?.req_id ?? '';
    const ack = (errcode, errmsg) => ws.send(JSON.stringify({ headers: { req_id: reqId }, errcode, errmsg }));
    switch (frame.cmd) {
      case 'aibot_subscribe':
        if (frame.body?.bot_id === this.botId && frame.body?.secret === this.secret) {
          this.current = ws;
          this.subscribes++;
          ack(0, 'ok');
        } else {
          ack(WRONG_SECRET_ERRCODE, 'invalid bot_id or secret');
        }
        return;
      case 'ping':
        if (this.ackPings && ws === this.current) ack(0, 'ok');
        return;
      case 'aibot_send_msg':
        if (ws !== this.current) return ack(846605, 'not subscribed');
        if (this.ackSends) ack(this.sendErrcode, this.sendErrcode === 0 ? 'ok' : 'refused by the fake');
        return;
      // Temporary media, in chunks (SDK uploadMedia): init → upload_id, chunk × n, finish → media_id.
      case 'aibot_upload_media_init': {
        if (ws !== this.current) return ack(846605, 'not subscribed');
        const uploadId = `up-${randomBytes(4).toString('hex')}`;
        this.uploads.set(uploadId, { ...frame.body, chunks: [] });
        return ws.send(JSON.stringify({ headers: { req_id: reqId }, errcode: 0, errmsg: 'ok', body: { upload_id: uploadId } }));
      }
      case 'aibot_upload_media_chunk': {
        const up = this.uploads.get(frame.body?.upload_id);
        if (!up) return ack(40058, 'unknown upload_id');
        up.chunks[frame.body.chunk_index] = Buffer.from(frame.body.base64_data, 'base64');
        return ack(0, 'ok');
      }
      case 'aibot_upload_media_finish': {
        const up = this.uploads.get(frame.body?.upload_id);
        if (!up) return ack(40058, 'unknown upload_id');
        const bytes = Buffer.concat(up.chunks);
        const mediaId = `media-${randomBytes(4).toString('hex')}`;
        this.media.set(mediaId, bytes);
        return ws.send(JSON.stringify({ headers: { req_id: reqId }, errcode: 0, errmsg: 'ok', body: { type: up.type, media_id: mediaId, created_at: String(Date.now()) } }));
      }
      case 'aibot_respond_msg':
      case 'aibot_respond_welcome_msg':
        if (ws !== this.current) return ack(846605, 'not subscribed');
        ack(0, 'ok');
        return;
      default:
        ack(40008, 'unknown cmd');
    }
  }

  // Pushes {cmd, headers: {req_id}, body} to the subscribed connection; returns the req_id.
  push(cmd, body, reqId = `${cmd}_${Date.now()}_${randomBytes(4).toString('hex')}`) {
    if (!this.current) throw new Error('no subscribed connection');
    this.current.send(JSON.stringify({ cmd, headers: { req_id: reqId }, body }));
    return reqId;
  }

  message(msgid, userid, content, chat = { chatid: 'CHAT1', chattype: 'group' }) {
    return this.push('aibot_msg_callback', {
      msgid, aibotid: this.botId, ...chat, from: { userid }, msgtype: 'text', text: { content },
    });
  }

  event(eventtype, userid = 'zhangwei') {
    return this.push('aibot_event_callback', {
      msgid: `ev-${randomBytes(4).toString('hex')}`, aibotid: this.botId, chattype: 'single',
      from: { userid }, msgtype: 'event', event: { eventtype },
    });
  }

  // Cuts the subscribed connection without a close handshake, as a broken network would.
  drop() {
    if (this.current) this.current.terminate();
    this.current = null;
  }

  framesOf(cmd) { return this.frames.filter((f) => f.frame.cmd === cmd); }
  replyTo(reqId) { return this.frames.find((f) => f.frame.headers?.req_id === reqId && f.frame.cmd?.startsWith('aibot_respond')); }

  wake() { for (const w of this.waiters.splice(0)) w(); }

  // Resolves when predicate() is true, re-checked on every frame and close; rejects after ms.
  async until(predicate, ms = 5000, what = 'condition') {
    const deadline = Date.now() + ms;
    while (!predicate()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 50));
        this.waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
  }

  async stop() {
    for (const c of this.wss.clients) c.terminate();
    await new Promise((resolve) => this.wss.close(resolve));
  }
}

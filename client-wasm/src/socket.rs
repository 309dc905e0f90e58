//! The signaling WebSocket. Its callbacks only forward what happens into the room's
//! input queue, tagged with the socket's generation so events of a replaced socket are
//! recognized and ignored. The closures are owned here and released on drop.

use convene_protocol::signal::ClientMessage;
use futures_channel::mpsc::UnboundedSender;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::{CloseEvent, Event, MessageEvent, WebSocket};

use crate::driver::Input;
use crate::errors::SdkError;

pub enum SocketEvent {
    Open,
    Message(String),
    Closed,
}

pub struct Socket {
    ws: WebSocket,
    _on_open: Closure<dyn FnMut(Event)>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
}

impl Socket {
    pub fn open(url: &str, generation: u64, tx: UnboundedSender<Input>) -> Result<Self, SdkError> {
        let ws = WebSocket::new(url).map_err(|_| {
            SdkError::connection_failed(format!("cannot open a WebSocket to {url}"))
        })?;
        let send = move |ev: SocketEvent| {
            let _ = tx.unbounded_send(Input::Socket(generation, ev));
        };
        let s = send.clone();
        let on_open = Closure::<dyn FnMut(Event)>::new(move |_| s(SocketEvent::Open));
        let s = send.clone();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            if let Some(text) = e.data().as_string() {
                s(SocketEvent::Message(text));
            }
        });
        // Why it closed is not in the close event (browsers hide it); a `left` frame
        // before the close says why, and its absence means the connection dropped.
        let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |_| send(SocketEvent::Closed));
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        Ok(Self {
            ws,
            _on_open: on_open,
            _on_message: on_message,
            _on_close: on_close,
        })
    }

    /// Sends one message; a closed socket drops it (the reconnect starts afresh).
    pub fn send(&self, msg: &ClientMessage) {
        if self.ws.ready_state() == WebSocket::OPEN {
            if let Ok(text) = serde_json::to_string(msg) {
                let _ = self.ws.send_with_str(&text);
            }
        }
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        // Detach first: the closures are freed right after, and the browser must not
        // call into them once they are gone.
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        let _ = self.ws.close();
    }
}

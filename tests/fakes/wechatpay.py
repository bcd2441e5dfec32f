"""A fake WeChat Pay API v3 on loopback, for tests.

It checks every request's ``Authorization`` signature with the merchant's public key, signs
every answer with its platform key (``Wechatpay-*`` headers, public-key mode), and builds
notifications the way the platform does (AES-256-GCM resource under the APIv3 key, RSA signed).

Payment codes are scripted by their last four digits: ``0001`` insufficient balance, ``0003``
USERPAYING that succeeds after ``settle_after`` queries, ``0004`` USERPAYING forever (so the
charge times out and is reversed); any other code succeeds at once.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from payments.tests.keys import public_key_pem, rsa_generate
from tests.fakes.http import Answer, serve

MCHID, APPID = "1900000001", "wxd678efh567hg6787"
MINI_APPID = "wx8888888888888888"  # a mini-program bound to the merchant, paying under its own AppID
MERCHANT_SERIAL = "3775B6A45ACD588826D15E583A95F5DD4C2E51C5"
PUBLIC_KEY_ID = "PUB_KEY_ID_0114232134912410000"
APIV3_KEY = "0123456789abcdefABCDEF0123456789"
FEE_RATE = Decimal("0.006")
_AUTH = re.compile(r'(\w+)="([^"]*)"')


def fen(amount: int) -> str:
    return f"{Decimal(amount) / 100:.2f}"


@dataclass
class Order:
    out_trade_no: str
    total: int
    kind: str
    state: str = "NOTPAY"
    transaction_id: str = ""
    polls_left: int = -1  # USERPAYING: queries until it settles; -1 never
    paid_at: str = ""
    appid: str = APPID
    openid: str = ""


@dataclass
class RefundRow:
    out_refund_no: str
    out_trade_no: str
    refund: int
    refund_id: str
    status: str = "PROCESSING"
    created_at: str = field(default_factory=lambda: datetime.now(ZoneInfo("Asia/Shanghai")).strftime(
        "%Y-%m-%d %H:%M:%S"))


@dataclass
class FakeWeChatPay:
    merchant = None
    platform = None
    url: str = ""
    orders: dict[str, Order] = field(default_factory=dict)
    refunds: dict[str, RefundRow] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    settle_after: int = 2
    refunds_settle: bool = False  # True: a refund succeeds at once; False: PROCESSING until settled
    tamper_next: bool = False

    def start(self) -> "FakeWeChatPay":
        self.merchant, self.platform = rsa_generate(), rsa_generate()
        self._server, self.url = serve(self._handle)
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def configure(self, settings) -> None:
        settings.WECHAT_PAY_MCHID, settings.WECHAT_PAY_APPID = MCHID, APPID
        settings.WECHAT_PAY_APIV3_KEY = APIV3_KEY
        settings.WECHAT_PAY_PRIVATE_KEY = self.merchant.private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
        settings.WECHAT_PAY_CERT_SERIAL = MERCHANT_SERIAL
        settings.WECHAT_PAY_PUBLIC_KEY = public_key_pem(self.platform)
        settings.WECHAT_PAY_PUBLIC_KEY_ID = PUBLIC_KEY_ID
        settings.WECHAT_PAY_CERT_DIR = ""
        settings.WECHAT_PAY_NOTIFY_URL = "https://shop.example.com/api/v1/payments/notify/wechat_pay/"
        settings.WECHATPAY_API_URL = self.url

    # --- the wire ----------------------------------------------------------------------------

    def _signed(self, status: int, payload, content_type: str = "application/json") -> Answer:
        body = payload if isinstance(payload, bytes) else (json.dumps(payload, ensure_ascii=False).encode()
                                                           if payload is not None else b"")
        ts, nonce = str(int(time.time())), secrets.token_hex(16)
        signature = self.platform.sign_b64(f"{ts}\n{nonce}\n".encode() + body + b"\n")
        if self.tamper_next and body:
            self.tamper_next = False
            body = body.replace(b"weixin://", b"weixin:/x").replace(b'"SUCCESS"', b'"REFUND"')
        return Answer(status, body, {"Content-Type": content_type, "Wechatpay-Timestamp": ts,
                                     "Wechatpay-Nonce": nonce, "Wechatpay-Serial": PUBLIC_KEY_ID,
                                     "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
                                     "Wechatpay-Signature": signature})

    def _error(self, status: int, code: str, message: str = "") -> Answer:
        return self._signed(status, {"code": code, "message": message or code})

    def _authorized(self, method: str, path: str, headers: dict[str, str], body: bytes) -> bool:
        auth = headers.get("Authorization", "")
        if not auth.startswith("WECHATPAY2-SHA256-RSA2048 "):
            return False
        fields = dict(_AUTH.findall(auth))
        if fields.get("mchid") != MCHID or fields.get("serial_no") != MERCHANT_SERIAL:
            return False
        message = f"{method}\n{path}\n{fields.get('timestamp')}\n{fields.get('nonce_str')}\n".encode() + body + b"\n"
        try:
            self.merchant.public.verify(base64.b64decode(fields.get("signature", "")), message,
                                        padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, ValueError):
            return False
        return abs(time.time() - int(fields.get("timestamp") or 0)) < 300

    def _handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        self.requests.append((method, path))
        if not self._authorized(method, path, headers, body):
            self.refused.append(path)
            return self._error(401, "SIGN_ERROR", "签名错误")
        data = json.loads(body) if body else {}
        route = urlsplit(path)
        query = {k: v[0] for k, v in parse_qs(route.query).items()}
        p = route.path
        if method == "POST" and p in ("/v3/pay/transactions/native", "/v3/pay/transactions/jsapi"):
            return self._prepay(data, p.rsplit("/", 1)[-1])
        if method == "POST" and p == "/v3/pay/transactions/codepay":
            return self._codepay(data)
        if match := re.fullmatch(r"/v3/pay/transactions/out-trade-no/([^/]+)", p):
            return self._query(match[1])
        if method == "POST" and (match := re.fullmatch(r"/v3/pay/transactions/out-trade-no/([^/]+)/reverse", p)):
            return self._reverse(match[1])
        if method == "POST" and p == "/v3/refund/domestic/refunds":
            return self._refund(data)
        if match := re.fullmatch(r"/v3/refund/domestic/refunds/([^/]+)", p):
            row = self.refunds.get(match[1])
            return self._refund_answer(row) if row else self._error(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
        if p in ("/v3/bill/tradebill", "/v3/bill/fundflowbill"):
            kind = "trade" if p.endswith("tradebill") else "fund"
            raw = self.trade_bill() if kind == "trade" else self.fund_bill()
            return self._signed(200, {"hash_type": "SHA1", "hash_value": hashlib.sha1(raw).hexdigest(),
                                      "download_url": f"{self.url}/v3/billdownload/file?token={kind}-{query['bill_date']}"})
        if p == "/v3/billdownload/file":
            raw = self.trade_bill() if query["token"].startswith("trade") else self.fund_bill()
            return Answer(200, gzip.compress(raw), {"Content-Type": "application/octet-stream"})
        return self._error(404, "NOT_FOUND")

    # --- payments ------------------------------------------------------------------------------

    def _prepay(self, data: dict, kind: str) -> Answer:
        if data.get("mchid") != MCHID or data.get("appid") not in (APPID, MINI_APPID) or not data.get("notify_url"):
            return self._error(400, "PARAM_ERROR")
        if kind == "jsapi" and not (data.get("payer") or {}).get("openid"):
            return self._error(400, "PARAM_ERROR", "JSAPI 需要 payer.openid")
        order = self.orders.setdefault(data["out_trade_no"], Order(data["out_trade_no"], data["amount"]["total"], kind))
        order.appid, order.openid = data["appid"], (data.get("payer") or {}).get("openid", "")
        if kind == "native":
            return self._signed(200, {"code_url": f"weixin://wxpay/bizpayurl?pr={order.out_trade_no[-8:]}"})
        return self._signed(200, {"prepay_id": f"wx{order.out_trade_no}"})

    def pay(self, out_trade_no: str) -> Order:
        """The customer pays the QR / JSAPI order."""
        order = self.orders[out_trade_no]
        order.state, order.transaction_id = "SUCCESS", f"42000{len(self.orders):05d}{out_trade_no[-12:]}"
        order.paid_at = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M:%S")
        return order

    def _codepay(self, data: dict) -> Answer:
        code = data["payer"]["auth_code"]
        if "store_info" not in (data.get("scene_info") or {}):
            return self._error(400, "PARAM_ERROR", "缺少 scene_info")
        order = self.orders.get(data["out_trade_no"])
        if order is None:
            order = self.orders[data["out_trade_no"]] = Order(data["out_trade_no"], data["amount"]["total"], "codepay")
            if code.endswith("0001"):
                order.state = "PAYERROR"
                return self._error(403, "NOTENOUGH", "用户余额不足")
            if code.endswith("0003") or code.endswith("0004"):
                order.state, order.polls_left = "USERPAYING", self.settle_after if code.endswith("0003") else -1
                return self._error(202, "USERPAYING", "需要用户输入支付密码")
            self.pay(order.out_trade_no)
        if order.state == "USERPAYING":
            return self._error(202, "USERPAYING", "需要用户输入支付密码")
        if order.state != "SUCCESS":
            return self._error(403, "ORDERCLOSED", order.state)
        return self._signed(200, self._trade(order))

    def _trade(self, order: Order) -> dict:
        out = {"appid": order.appid, "mchid": MCHID, "out_trade_no": order.out_trade_no, "trade_state": order.state,
               "trade_type": order.kind.upper(), "amount": {"total": order.total, "currency": "CNY"}}
        if order.transaction_id:
            out["transaction_id"] = order.transaction_id
        return out

    def _query(self, out_trade_no: str) -> Answer:
        order = self.orders.get(out_trade_no)
        if order is None:
            return self._error(404, "ORDER_NOT_EXIST", "订单不存在")
        if order.state == "USERPAYING" and order.polls_left > 0:
            order.polls_left -= 1
            if order.polls_left == 0:
                self.pay(out_trade_no)
        return self._signed(200, self._trade(order))

    def _reverse(self, out_trade_no: str) -> Answer:
        order = self.orders.get(out_trade_no)
        if order is None:
            return self._error(404, "ORDER_NOT_EXIST")
        order.state = "REVOKED"
        return self._signed(204, None)

    # --- refunds -------------------------------------------------------------------------------

    def _refund(self, data: dict) -> Answer:
        order = self.orders.get(data.get("out_trade_no", ""))
        if order is None or order.state != "SUCCESS":
            return self._error(400, "RESOURCE_NOT_EXISTS", "订单不存在")
        if data["amount"]["total"] != order.total:
            return self._error(400, "PARAM_ERROR", "订单金额不一致")
        row = self.refunds.get(data["out_refund_no"])
        if row is None:
            row = self.refunds[data["out_refund_no"]] = RefundRow(
                data["out_refund_no"], order.out_trade_no, data["amount"]["refund"],
                f"50300{len(self.refunds):05d}{data['out_refund_no'][-12:]}")
            if self.refunds_settle:
                row.status = "SUCCESS"
        return self._refund_answer(row)

    def _refund_answer(self, row: RefundRow) -> Answer:
        order = self.orders[row.out_trade_no]
        return self._signed(200, {"refund_id": row.refund_id, "out_refund_no": row.out_refund_no,
                                  "transaction_id": order.transaction_id, "out_trade_no": row.out_trade_no,
                                  "status": row.status, "amount": {"total": order.total, "refund": row.refund,
                                                                   "currency": "CNY"}})

    # --- notifications -------------------------------------------------------------------------

    def _notification(self, event_type: str, original_type: str, resource: dict, *, timestamp=None):
        nonce = secrets.token_hex(6)
        sealed = AESGCM(APIV3_KEY.encode()).encrypt(nonce.encode(), json.dumps(resource).encode(),
                                                    original_type.encode())
        body = json.dumps({"id": f"EV-{secrets.token_hex(8)}", "event_type": event_type,
                           "resource_type": "encrypt-resource", "summary": "通知",
                           "resource": {"original_type": original_type, "algorithm": "AEAD_AES_256_GCM",
                                        "ciphertext": base64.b64encode(sealed).decode(),
                                        "associated_data": original_type, "nonce": nonce}},
                          ensure_ascii=False).encode()
        ts, header_nonce = str(int(time.time()) if timestamp is None else timestamp), secrets.token_hex(16)
        return {"Wechatpay-Timestamp": ts, "Wechatpay-Nonce": header_nonce, "Wechatpay-Serial": PUBLIC_KEY_ID,
                "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048", "Content-Type": "application/json",
                "Wechatpay-Signature": self.platform.sign_b64(f"{ts}\n{header_nonce}\n".encode() + body + b"\n")
                }, body

    def payment_notification(self, out_trade_no: str, **kwargs):
        return self._notification("TRANSACTION.SUCCESS", "transaction", self._trade(self.orders[out_trade_no]),
                                  **kwargs)

    def settle_refund(self, out_refund_no: str):
        """The refund reaches the customer: its notification (headers, body) to deliver, or to lose."""
        row = self.refunds[out_refund_no]
        row.status = "SUCCESS"
        order = self.orders[row.out_trade_no]
        return self._notification("REFUND.SUCCESS", "refund", {
            "mchid": MCHID, "out_trade_no": row.out_trade_no, "transaction_id": order.transaction_id,
            "out_refund_no": row.out_refund_no, "refund_id": row.refund_id, "refund_status": "SUCCESS",
            "amount": {"total": order.total, "refund": row.refund, "payer_total": order.total,
                       "payer_refund": row.refund}})

    # --- bills ---------------------------------------------------------------------------------

    def _fee(self, total: int) -> Decimal:
        return (Decimal(total) / 100 * FEE_RATE).quantize(Decimal("0.01"))

    def trade_bill(self) -> bytes:
        head = ("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,"
                "货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,"
                "商户数据包,手续费,费率,订单金额,申请退款金额,费率备注")
        lines, paid, refunded, fees = [head], Decimal("0"), Decimal("0"), Decimal("0")
        now = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M:%S")
        paid_orders = [o for o in self.orders.values() if o.transaction_id]
        for o in paid_orders:
            fee = self._fee(o.total)
            paid, fees = paid + Decimal(fen(o.total)), fees + fee
            cells = [o.paid_at or now, APPID, MCHID, "0", "", o.transaction_id, o.out_trade_no, "oUpF8uMuAJO", o.kind.upper(),
                     "SUCCESS", "OTHERS", "CNY", fen(o.total), "0.00", "0", "0", "0.00", "0.00", "", "", "订单", "",
                     f"{fee}", "0.60%", fen(o.total), "0.00", ""]
            lines.append(",".join(f"`{c}" for c in cells))
        for r in (r for r in self.refunds.values() if r.status == "SUCCESS"):
            o = self.orders[r.out_trade_no]
            fee = -self._fee(r.refund)
            refunded, fees = refunded + Decimal(fen(r.refund)), fees + fee
            cells = [r.created_at, APPID, MCHID, "0", "", o.transaction_id, o.out_trade_no, "oUpF8uMuAJO",
                     o.kind.upper(), "REFUND", "OTHERS", "CNY", "0.00", "0.00", r.refund_id, r.out_refund_no, fen(r.refund), "0.00",
                     "ORIGINAL", "SUCCESS", "订单", "", f"{fee}", "0.60%", "0.00", fen(r.refund), ""]
            lines.append(",".join(f"`{c}" for c in cells))
        lines.append("总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额")
        count = len(lines) - 2
        lines.append(f"`{count},`{paid:.2f},`{refunded:.2f},`0.00,`{fees:.2f},`{paid:.2f},`{refunded:.2f}")
        return ("\r\n".join(lines) + "\r\n").encode("utf-8")

    def fund_bill(self) -> bytes:
        """资金账单 (BASIC): what actually moved on the merchant's account."""
        head = "记账时间,微信支付业务单号,资金流水单号,业务名称,业务类型,收支类型,收支金额（元）,账户结余（元）,资金变更提交申请人,备注,业务凭证号"
        lines, balance, income, expense, n_in, n_out = [head], Decimal("0"), Decimal("0"), Decimal("0"), 0, 0
        now = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M:%S")
        moves = []
        for o in (o for o in self.orders.values() if o.transaction_id):
            moves += [(o.paid_at or now, o.transaction_id, "交易", "收入", Decimal(fen(o.total))),
                      (o.paid_at or now, o.transaction_id, "扣除交易手续费", "支出", self._fee(o.total))]
        for r in (r for r in self.refunds.values() if r.status == "SUCCESS"):
            moves += [(r.created_at, r.refund_id, "退款", "支出", Decimal(fen(r.refund))),
                      (r.created_at, r.refund_id, "退还交易手续费", "收入", self._fee(r.refund))]
        for i, (at, ref, kind, direction, amount) in enumerate(moves):
            balance += amount if direction == "收入" else -amount
            if direction == "收入":
                income, n_in = income + amount, n_in + 1
            else:
                expense, n_out = expense + amount, n_out + 1
            lines.append(",".join(f"`{c}" for c in [at, ref, f"F{i:08d}", kind, kind, direction, f"{amount:.2f}",
                                                     f"{balance:.2f}", "system", "", ref]))
        lines.append("资金流水总笔数,收入笔数,收入金额,支出笔数,支出金额")
        lines.append(f"`{len(moves)},`{n_in},`{income:.2f},`{n_out},`{expense:.2f}")
        return ("\r\n".join(lines) + "\r\n").encode("utf-8")

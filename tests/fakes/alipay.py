"""A fake Alipay open-platform gateway on loopback, for tests.

It checks every request's RSA2 signature with the app's public key (all parameters but
``sign``, sorted, ``k=v`` joined by ``&``), signs every answer with its own key over the exact
JSON text of the ``…_response`` object, and builds notifications as Alipay does (form
parameters but ``sign`` and ``sign_type``, sorted and signed).  Payment codes are scripted by
their last four digits like the WeChat Pay fake: ``0001`` balance too low, ``0003`` 10003 then
paid after ``settle_after`` queries, ``0004`` 10003 forever.
"""

from __future__ import annotations

import base64
import io
import json
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from urllib.parse import parse_qsl, urlencode, urlsplit
from zoneinfo import ZoneInfo

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from payments.tests.keys import public_key_base64, rsa_generate
from tests.fakes.http import Answer, serve

APP_ID = "2021000000000001"
FEE_RATE = Decimal("0.006")


def now() -> str:
    return datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M:%S")


class _GbkName(zipfile.ZipInfo):
    """A member name written in GBK without the UTF-8 flag, as Alipay's bill archives come."""

    def _encodeFilenameFlags(self):  # zipfile would write non-ASCII names as flagged UTF-8
        return self.filename.encode("gbk"), self.flag_bits & ~0x800


@dataclass
class Trade:
    out_trade_no: str
    total: Decimal
    status: str = "WAIT_BUYER_PAY"
    trade_no: str = ""
    polls_left: int = -1
    scanned: bool = True
    buyer_id: str = ""
    paid_at: str = ""


@dataclass
class FakeAlipay:
    app = None
    alipay = None
    url: str = ""
    trades: dict[str, Trade] = field(default_factory=dict)
    refunds: dict[str, tuple[str, Decimal]] = field(default_factory=dict)  # out_request_no → (out_trade_no, amount)
    refunded_at: dict[str, str] = field(default_factory=dict)  # out_request_no → when (bills are stable)
    methods: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    timestamps: list[str] = field(default_factory=list)
    settle_after: int = 2
    tamper_next: bool = False
    lose_answer_to: str = ""  # a method whose next request is handled but whose answer never reaches us

    def start(self) -> "FakeAlipay":
        self.app, self.alipay = rsa_generate(), rsa_generate()
        self._server, self.url = serve(self._handle)
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def configure(self, settings) -> None:
        settings.ALIPAY_APP_ID = APP_ID
        # As the console and Alipay's key tool show them: bare base64.
        settings.ALIPAY_APP_PRIVATE_KEY = self.app.private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption()).decode()
        settings.ALIPAY_PUBLIC_KEY = public_key_base64(self.alipay)
        settings.ALIPAY_NOTIFY_URL = "https://shop.example.com/api/v1/payments/notify/alipay/"
        settings.ALIPAY_GATEWAY_URL = f"{self.url}/gateway.do"

    # --- the wire ----------------------------------------------------------------------------

    def _answer(self, method: str, payload: dict) -> Answer:
        inner = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        sign = self.alipay.sign_b64(inner.encode())
        if self.tamper_next:
            self.tamper_next = False
            inner = inner.replace('"10000"', '"10000" ').replace("https://qr.alipay.com/", "https://qr.evil.com/")
        key = method.replace(".", "_") + "_response"
        body = f'{{"{key}":{inner},"sign":"{sign}"}}'.encode()
        return Answer(200, body, {"Content-Type": "text/html;charset=utf-8"})

    def _handle(self, method_: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        route = urlsplit(path)
        if route.path.startswith("/bill/"):
            return Answer(200, self.bill_zip(), {"Content-Type": "application/octet-stream"})
        params = dict(parse_qsl(route.query or body.decode(), keep_blank_values=True))
        method = params.get("method", "")
        self.methods.append(method)
        sign = params.pop("sign", "")
        content = "&".join(f"{k}={params[k]}" for k in sorted(params))
        try:
            self.app.public.verify(base64.b64decode(sign), content.encode(), padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, ValueError):
            self.refused.append(method)
            return self._answer(method, {"code": "40002", "msg": "Invalid Arguments", "sub_code": "isv.invalid-signature",
                                         "sub_msg": "验签出错"})
        if params.get("app_id") != APP_ID or params.get("sign_type") != "RSA2":
            return self._answer(method, {"code": "40002", "msg": "Invalid Arguments", "sub_code": "isv.invalid-app-id"})
        self.timestamps.append(params.get("timestamp", ""))
        biz = json.loads(params.get("biz_content") or "{}")
        handler = {
            "alipay.trade.precreate": self._precreate, "alipay.trade.pay": self._pay,
            "alipay.trade.create": self._create,
            "alipay.trade.query": self._query, "alipay.trade.cancel": self._cancel,
            "alipay.trade.refund": self._refund, "alipay.trade.fastpay.refund.query": self._refund_query,
            "alipay.data.dataservice.bill.downloadurl.query": self._bill_url,
        }.get(method)
        if handler is None:
            return self._answer(method, {"code": "40004", "msg": "Business Failed", "sub_code": "isv.unknown"})
        answer = self._answer(method, handler(biz, params))
        if method and method == self.lose_answer_to:
            self.lose_answer_to = ""
            return Answer(504, b"gateway timeout", {"Content-Type": "text/plain"})
        return answer

    @staticmethod
    def _failed(sub_code: str, sub_msg: str) -> dict:
        return {"code": "40004", "msg": "Business Failed", "sub_code": sub_code, "sub_msg": sub_msg}

    # --- trades --------------------------------------------------------------------------------

    def _precreate(self, biz: dict, params: dict) -> dict:
        if not params.get("notify_url"):
            return self._failed("ACQ.INVALID_PARAMETER", "notify_url")
        self.trades.setdefault(biz["out_trade_no"], Trade(biz["out_trade_no"], Decimal(biz["total_amount"]),
                                                           scanned=False))
        return {"code": "10000", "msg": "Success", "out_trade_no": biz["out_trade_no"],
                "qr_code": f"https://qr.alipay.com/bax0{biz['out_trade_no'][-8:]}"}

    def _create(self, biz: dict, params: dict) -> dict:
        """A mini-program trade: the buyer is known, the trade exists at once (WAIT_BUYER_PAY)."""
        if not params.get("notify_url"):
            return self._failed("ACQ.INVALID_PARAMETER", "notify_url")
        if not (biz.get("buyer_id") or biz.get("buyer_open_id")):
            return self._failed("ACQ.INVALID_PARAMETER", "buyer_id")
        trade = self.trades.setdefault(biz["out_trade_no"], Trade(biz["out_trade_no"], Decimal(biz["total_amount"])))
        trade.trade_no = trade.trade_no or f"2026120422001{len(self.trades):04d}{biz['out_trade_no'][-10:]}"
        trade.buyer_id = biz.get("buyer_id", "")
        return {"code": "10000", "msg": "Success", "out_trade_no": trade.out_trade_no, "trade_no": trade.trade_no}

    def pay(self, out_trade_no: str) -> Trade:
        trade = self.trades[out_trade_no]
        trade.status, trade.scanned = "TRADE_SUCCESS", True
        trade.paid_at = trade.paid_at or now()
        trade.trade_no = trade.trade_no or f"2026120422001{len(self.trades):04d}{out_trade_no[-10:]}"
        return trade

    def _pay(self, biz: dict, params: dict) -> dict:
        code, out_trade_no = biz["auth_code"], biz["out_trade_no"]
        trade = self.trades.get(out_trade_no)
        if trade is None:
            trade = self.trades[out_trade_no] = Trade(out_trade_no, Decimal(biz["total_amount"]))
            if code.endswith("0001"):
                trade.status = "TRADE_CLOSED"
                return self._failed("ACQ.BUYER_BALANCE_NOT_ENOUGH", "买家余额不足")
            if code.endswith(("0003", "0004")):
                trade.trade_no = f"2026120422001{len(self.trades):04d}{out_trade_no[-10:]}"
                trade.polls_left = self.settle_after if code.endswith("0003") else -1
                return {"code": "10003", "msg": " order success pay inprocess", "trade_no": trade.trade_no,
                        "out_trade_no": out_trade_no}
            self.pay(out_trade_no)
        if trade.status == "TRADE_SUCCESS":
            return {"code": "10000", "msg": "Success", "trade_no": trade.trade_no, "out_trade_no": out_trade_no,
                    "total_amount": f"{trade.total:.2f}", "gmt_payment": now()}
        return self._failed("ACQ.TRADE_HAS_CLOSE", "交易已关闭")

    def _query(self, biz: dict, params: dict) -> dict:
        trade = self.trades.get(biz.get("out_trade_no", ""))
        if trade is None or not trade.scanned:
            return self._failed("ACQ.TRADE_NOT_EXIST", "交易不存在")
        if trade.status == "WAIT_BUYER_PAY" and trade.polls_left > 0:
            trade.polls_left -= 1
            if trade.polls_left == 0:
                self.pay(trade.out_trade_no)
        return {"code": "10000", "msg": "Success", "trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no,
                "trade_status": trade.status, "total_amount": f"{trade.total:.2f}"}

    def _cancel(self, biz: dict, params: dict) -> dict:
        trade = self.trades.get(biz.get("out_trade_no", ""))
        if trade is None:
            return self._failed("ACQ.TRADE_NOT_EXIST", "交易不存在")
        action = "refund" if trade.status == "TRADE_SUCCESS" else "close"
        trade.status = "TRADE_CLOSED"
        return {"code": "10000", "msg": "Success", "out_trade_no": trade.out_trade_no, "retry_flag": "N",
                "action": action}

    # --- refunds -------------------------------------------------------------------------------

    def _refund(self, biz: dict, params: dict) -> dict:
        trade = self.trades.get(biz.get("out_trade_no", ""))
        if trade is None or trade.status != "TRADE_SUCCESS":
            return self._failed("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
        request_no = biz.get("out_request_no") or trade.out_trade_no
        again = request_no in self.refunds
        if not again:
            self.refunds[request_no] = (trade.out_trade_no, Decimal(biz["refund_amount"]))
            self.refunded_at[request_no] = now()
        refunded = sum((a for t, a in self.refunds.values() if t == trade.out_trade_no), Decimal("0"))
        return {"code": "10000", "msg": "Success", "trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no,
                "refund_fee": f"{refunded:.2f}", "fund_change": "N" if again else "Y"}

    def _refund_query(self, biz: dict, params: dict) -> dict:
        trade = self.trades.get(biz.get("out_trade_no", ""))
        if trade is None:
            return self._failed("ACQ.TRADE_NOT_EXIST", "交易不存在")
        row = self.refunds.get(biz["out_request_no"])
        if row is None:  # Alipay answers 10000 with nothing for a refund it never received
            return {"code": "10000", "msg": "Success"}
        return {"code": "10000", "msg": "Success", "trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no,
                "out_request_no": biz["out_request_no"], "refund_amount": f"{row[1]:.2f}",
                "total_amount": f"{trade.total:.2f}", "refund_status": "REFUND_SUCCESS"}

    # --- notifications -------------------------------------------------------------------------

    def notification(self, out_trade_no: str, **overrides) -> bytes:
        trade = self.trades[out_trade_no]
        params = {"notify_time": now(), "notify_type": "trade_status_sync", "notify_id": "ac05099524730693a8b330c5",
                  "app_id": APP_ID, "charset": "utf-8", "version": "1.0", "trade_no": trade.trade_no,
                  "out_trade_no": out_trade_no, "trade_status": trade.status, "total_amount": f"{trade.total:.2f}",
                  "subject": f"订单 {out_trade_no}", "gmt_payment": now(), **overrides}
        content = "&".join(f"{k}={params[k]}" for k in sorted(params))
        params["sign"] = self.alipay.sign_b64(content.encode())
        params["sign_type"] = "RSA2"
        return urlencode(params).encode()

    def refund_notification(self, out_request_no: str, **overrides) -> bytes:
        """What Alipay sends when a refund reaches the buyer: the trade's notification with
        ``out_biz_no`` (our refund number) and ``refund_fee``, the trade's total refunded so far."""
        out_trade_no, _amount = self.refunds[out_request_no]
        trade = self.trades[out_trade_no]
        refunded = sum((a for t, a in self.refunds.values() if t == out_trade_no), Decimal("0"))
        return self.notification(out_trade_no, **{
            "out_biz_no": out_request_no, "refund_fee": f"{refunded:.2f}", "gmt_refund": now() + ".000",
            "trade_status": "TRADE_CLOSED" if refunded >= trade.total else "TRADE_SUCCESS", **overrides})

    # --- bills ---------------------------------------------------------------------------------

    def _bill_url(self, biz: dict, params: dict) -> dict:
        if biz.get("bill_type") != "trade":
            return self._failed("isp.bill_not_exist", "账单不存在")
        return {"code": "10000", "msg": "Success", "bill_download_url": f"{self.url}/bill/{biz['bill_date']}.zip"}

    def _fee(self, amount: Decimal) -> Decimal:
        return (amount * FEE_RATE).quantize(Decimal("0.01"))

    def bill_csv(self) -> str:
        head = ("支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,订单金额（元）,"
                "商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,"
                "卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注")
        day = now()[:10]
        rows, trades, refunds = [], 0, 0
        for t in (t for t in self.trades.values() if t.trade_no and t.scanned and (
                t.status == "TRADE_SUCCESS" or any(r[0] == t.out_trade_no for r in self.refunds.values()))):
            trades += 1
            at = t.paid_at or day + " 00:00:00"
            rows.append([t.trade_no, t.out_trade_no, "交易", "订单", at, at, "", "", "", "", "buyer@example.com",
                         f"{t.total:.2f}", f"{t.total:.2f}", "0.00", "0.00", "0.00", "0.00", "0.00", "", "0.00",
                         "0.00", "", f"{-self._fee(t.total):.2f}", "0.00", ""])
        for request_no, (out_trade_no, amount) in self.refunds.items():
            refunds += 1
            t = self.trades[out_trade_no]
            at = self.refunded_at.get(request_no, day + " 00:00:00")
            rows.append([t.trade_no, out_trade_no, "退款", "订单", at, at, "", "", "", "", "buyer@example.com",
                         f"{-amount:.2f}", f"{-amount:.2f}", "0.00", "0.00", "0.00", "0.00", "0.00", "", "0.00",
                         "0.00", request_no, f"{self._fee(amount):.2f}", "0.00", ""])
        lines = ["#支付宝业务明细查询", "#账号：[20880000000000000156]",
                 f"#起始日期：[{day} 00:00:00]   终止日期：[{day} 23:59:59]",
                 "#-----------------------------------------业务明细列表----------------------------------------",
                 head] + ["\t,".join(r) + "\t" for r in rows] + [
                 "#-----------------------------------------业务明细列表结束------------------------------------",
                 f"#交易合计：{trades}笔，商家实收共{sum(Decimal(r[12]) for r in rows):.2f}元；退款合计：{refunds}笔",
                 f"#导出时间：[{day} 09:00:00]"]  # the same file however often it is downloaded
        return "\r\n".join(lines) + "\r\n"

    def bill_zip(self) -> bytes:
        day = now()[:10].replace("-", "")
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as archive:
            for name, text in ((f"20880000000000000156_{day}_业务明细.csv", self.bill_csv()),
                               (f"20880000000000000156_{day}_业务明细(汇总).csv", "#汇总\r\n")):
                archive.writestr(_GbkName(name), text.encode("gbk"))
        return out.getvalue()

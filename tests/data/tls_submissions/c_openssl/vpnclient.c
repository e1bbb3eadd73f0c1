/* TLS VPN client (SEED TLS/SSL VPN lab): ./vpnclient <hostname> <port>
 * Verifies the server's certificate against ./ca.crt and the host name, logs in with a
 * user name and password, then tunnels IP packets between its TUN and the TLS session. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <unistd.h>

#define CA_FILE "./ca.crt"
#define BUFF_SIZE 4096

int createTunDevice(char *name)
{
    struct ifreq ifr;
    int tunfd = open("/dev/net/tun", O_RDWR);
    memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
    strncpy(ifr.ifr_name, "zhang%d", IFNAMSIZ - 1);
    if (tunfd < 0 || ioctl(tunfd, TUNSETIFF, &ifr) < 0) {
        perror("TUN");
        exit(1);
    }
    strcpy(name, ifr.ifr_name);
    return tunfd;
}

SSL *setupTLSClient(const char *hostname)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (SSL_CTX_load_verify_locations(ctx, CA_FILE, NULL) < 1) {
        printf("Error setting the verify locations.\n");
        exit(1);
    }
    SSL *ssl = SSL_new(ctx);
    SSL_set_tlsext_host_name(ssl, hostname);
    SSL_set1_host(ssl, hostname); /* the certificate must be for this name */
    return ssl;
}

int setupTCPClient(const char *hostname, int port)
{
    struct sockaddr_in server_addr;
    struct hostent *hp = gethostbyname(hostname);
    if (hp == NULL) {
        printf("cannot resolve %s\n", hostname);
        exit(1);
    }
    int sockfd = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    memset(&server_addr, 0, sizeof(server_addr));
    memcpy(&server_addr.sin_addr.s_addr, hp->h_addr, hp->h_length);
    server_addr.sin_port = htons(port);
    server_addr.sin_family = AF_INET;
    if (connect(sockfd, (struct sockaddr *)&server_addr, sizeof(server_addr)) < 0) {
        perror("connect");
        exit(1);
    }
    return sockfd;
}

int main(int argc, char *argv[])
{
    char *hostname = "vpnlabserver.com";
    int port = 4433;
    char buf[BUFF_SIZE], user[64], line[256], tunname[IFNAMSIZ], cmd[256];

    if (argc > 1) hostname = argv[1];
    if (argc > 2) port = atoi(argv[2]);

    SSL *ssl = setupTLSClient(hostname);
    int sockfd = setupTCPClient(hostname, port);
    SSL_set_fd(ssl, sockfd);
    if (SSL_connect(ssl) != 1) {
        ERR_print_errors_fp(stderr);
        exit(2);
    }
    printf("SSL connection is successful, using %s\n", SSL_get_cipher(ssl));

    printf("Username: ");
    fflush(stdout);
    if (fgets(user, sizeof(user), stdin) == NULL) exit(1);
    user[strcspn(user, "\n")] = 0;
    char *password = getpass("Password: ");
    snprintf(line, sizeof(line), "LOGIN %s %s\n", user, password);
    SSL_write(ssl, line, strlen(line));

    int len = SSL_read(ssl, buf, sizeof(buf) - 1);
    if (len <= 0) {
        printf("the server closed the connection\n");
        exit(1);
    }
    buf[len] = 0;
    printf("%s", buf);
    if (strncmp(buf, "OK ", 3) != 0) exit(1);
    buf[strcspn(buf, "\n")] = 0;

    int tunfd = createTunDevice(tunname);
    snprintf(cmd, sizeof(cmd), "ip addr add %s dev %s", buf + 3, tunname);
    system(cmd);
    snprintf(cmd, sizeof(cmd), "ip link set dev %s up", tunname);
    system(cmd);
    snprintf(cmd, sizeof(cmd), "ip route add 192.168.60.0/24 dev %s", tunname);
    system(cmd);

    while (1) {
        fd_set readFDSet;
        FD_ZERO(&readFDSet);
        FD_SET(sockfd, &readFDSet);
        FD_SET(tunfd, &readFDSet);
        select(FD_SETSIZE, &readFDSet, NULL, NULL, NULL);

        if (FD_ISSET(tunfd, &readFDSet)) {
            len = read(tunfd, buf, BUFF_SIZE);
            SSL_write(ssl, buf, len);
        }
        if (FD_ISSET(sockfd, &readFDSet)) {
            len = SSL_read(ssl, buf, BUFF_SIZE);
            if (len <= 0) {
                printf("the server closed the connection\n");
                exit(0);
            }
            write(tunfd, buf, len);
        }
    }
}
